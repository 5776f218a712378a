"""Exposures, taken off the request path: a request appends to a per-process buffer
(core/buffers.py) and returns; the buffer writes them in batches.

One idempotent upsert per batch, written by the flusher itself. Exposures once went
through Celery, but a broker restarted without persistence lost the batches it held,
and the analysis counts users from this table; a batch now stays in the buffer until
the database has committed it. A process also remembers which (experiment, user)
pairs it already sent, so a user who asks for assignments a hundred times costs one
exposure. The write is idempotent on (experiment, user), so a pair sent by two
processes, or a batch written twice, is still one row.
"""

from datetime import UTC, datetime

from django.conf import settings

from core.buffers import BatchBuffer
from experiments.assignment import Assignment, HoldoutConfig, assign
from experiments.services import record_exposures


def _send_exposures(rows: list) -> None:
    record_exposures(rows)


buffer = BatchBuffer("exposures", _send_exposures, lambda: settings.EXPOSURE_BATCH_SIZE,
                     lambda: settings.EXPOSURE_FLUSH_SECONDS)


def record_exposure(experiment_id: int, variant_id: int, user_id: str, attributes: dict, forced: bool) -> None:
    buffer.add(
        {"experiment_id": experiment_id, "variant_id": variant_id, "user_id": user_id,
         "at": datetime.now(UTC).isoformat(), "attributes": attributes, "forced": forced},
        key=(experiment_id, user_id),
    )


def record_exposures_of(assignments: list[Assignment], user_id: str, attributes: dict) -> None:
    for a in assignments:
        record_exposure(a.experiment.id, a.experiment.variants[a.variant].id, user_id, attributes, a.forced)


def record_holdout_exposure(holdout: HoldoutConfig | None, user_id: str, attributes: dict, forced: bool) -> None:
    """Every user a surface with a measured holdout serves is exposed in the holdout's
    experiment: held back, or launched (everyone else)."""
    if holdout is None or holdout.experiment_id is None:
        return
    variant_id = holdout.held_back_variant_id if holdout.holds_out(user_id) else holdout.launched_variant_id
    if variant_id is not None:
        record_exposure(holdout.experiment_id, variant_id, user_id, attributes, forced)


def assign_and_record(config, surface: str, user_id: str, attributes: dict) -> list[Assignment]:
    """The user's assignments; records an exposure for each."""
    assignments = assign(config, surface, user_id, attributes)
    record_exposures_of(assignments, user_id, attributes)
    return assignments


def assignments_for(config, surface: str, user_id: str, attributes: dict) -> dict:
    """The assignment body for one user; records an exposure for each assignment."""
    return {"user_id": user_id, "assignments": [
        {"experiment": a.experiment.key, "variant": a.variant, "layer": a.experiment.layer,
         "recommender": a.experiment.variants[a.variant].recommender.get("name", "")}
        for a in assign_and_record(config, surface, user_id, attributes)
    ]}
