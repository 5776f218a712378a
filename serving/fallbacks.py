"""Per variant, how many closeups its config shaped and how many of those fell back:
counted in a per-process buffer and added to the daily counts in one upsert per flush,
off the request path (experiments.VariantServing). The results show the rate, because
a variant that is fast only because it falls back must not look good for it."""

from datetime import UTC, datetime

from django.conf import settings

from core.buffers import BatchBuffer
from experiments.services import add_serving_counts

counts = BatchBuffer("variant serving counts", add_serving_counts, lambda: settings.EXPOSURE_BATCH_SIZE,
                     lambda: settings.EXPOSURE_FLUSH_SECONDS)


def count_served(variant_ids_fell_back) -> None:
    day = datetime.now(UTC).date().isoformat()
    for variant_id, fell_back in variant_ids_fell_back:
        counts.add((variant_id, day, fell_back))
