"""The closeup as a service: `serve_closeup` assigns the user, asks the variant's
recommender for the grid under a deadline, falls back to the default recommender when
it fails or is too slow, leaves out the pins the user hid, and logs one served
impression per item. The view (serving/api/views.py) only parses and renders."""

import concurrent.futures
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings

from core.outage import OutageBackoff
from events.selectors import hidden_pins_of
from experiments.exposures import assign_and_record
from experiments.runtime import current_config
from recommenders.serving import current_models
from serving.impressions import log_served

logger = logging.getLogger(__name__)

SURFACE = "closeup"
_pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="recommend")
# A closeup page is worth more than the hide filter during an outage: the grid is
# served without it (the response says so).
_hidden_pins = OutageBackoff("hidden-pin filtering of closeups")


class NoModelsBuilt(Exception):
    """No recommender has been built yet: nothing to serve."""


class UnknownPin(LookupError):
    pass


@dataclass(frozen=True)
class CloseupItem:
    pin_id: int
    position: int
    score: float


@dataclass(frozen=True)
class Closeup:
    request_id: str
    pin_id: int
    user_id: str
    experiment: str | None
    variant: str | None
    recommender: str  # the one that actually served the list
    fallback_reason: str | None
    hidden_pins_filtered: bool
    items: tuple[CloseupItem, ...]


def serve_closeup(pin_id: int, user_id: str, k: int, attributes: dict) -> Closeup:
    models = current_models()
    if models is None:
        raise NoModelsBuilt()
    pin = models.catalog.pin_index(pin_id)
    if pin is None:
        raise UnknownPin(pin_id)

    chosen = next(iter(assign_and_record(current_config(), SURFACE, user_id, attributes)), None)
    name, params = settings.DEFAULT_RECOMMENDER, {}
    if chosen is not None:
        config = chosen.experiment.variants[chosen.variant].recommender
        name, params = config.get("name", name), config.get("params", {})

    history = models.catalog.history(user_id)
    hidden = _hidden_pins.read(lambda: hidden_pins_of(user_id))
    exclude = [i for p in hidden or () if (i := models.catalog.pin_index(p)) is not None]
    topics = models.user_topics(history)
    ranked, served_by, reason = _recommend(models, name, params, (pin, history, k, exclude, topics))

    pin_ids = models.catalog.pin_ids
    items = tuple(CloseupItem(int(pin_ids[i]), position, round(score, 6)) for position, (i, score) in enumerate(ranked))
    request_id = str(uuid.uuid4())
    log_served(request_id, datetime.now(UTC).isoformat(), user_id, items)
    return Closeup(request_id=request_id, pin_id=pin_id, user_id=user_id,
                   experiment=chosen.experiment.key if chosen else None, variant=chosen.variant if chosen else None,
                   recommender=served_by, fallback_reason=reason, hidden_pins_filtered=hidden is not None,
                   items=items)


def _recommend(models, name: str, params: dict, query: tuple) -> tuple[list, str, str | None]:
    """(ranked (index, score) pairs, the recommender that served them, why it fell back)."""
    reason, error = None, None
    try:
        # Restoring a recommender with unusual params happens once, outside the deadline.
        recommender = models.recommender(name, params)
        future = _pool.submit(recommender.related, *query)
        return future.result(timeout=settings.RECOMMENDER_TIMEOUT_MS / 1000), name, None
    except concurrent.futures.TimeoutError:
        reason = f"{name} took longer than {settings.RECOMMENDER_TIMEOUT_MS} ms"
    except Exception as exc:  # a broken recommender must not break the closeup page
        reason, error = f"{name} failed: {type(exc).__name__}: {exc}", exc
    logger.warning("closeup fallback to %s: %s", settings.DEFAULT_RECOMMENDER, reason, exc_info=error)
    return models.recommender(settings.DEFAULT_RECOMMENDER).related(*query), settings.DEFAULT_RECOMMENDER, reason
