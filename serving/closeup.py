"""The closeup as a service: `serve_closeup` runs the surface's pipeline for one
request and logs what it served. The view (serving/api/views.py) only parses and renders.

The pipeline: the user is assigned in every closeup layer. An experiment in a `whole`
layer makes the whole list with its variant's recommender. Otherwise the list is made
in two stages, each configured by the user's experiment in a layer of that stage, else
by the surface default: retrieval (a recommender's best candidates) and ranking (a
ranker orders them; without one the retrieval order stands). So a retrieval experiment
and a ranking experiment run on the same users at once, each deciding its own stage.

Only the experiments whose variant shaped the response record an exposure: a user in a
ranking experiment who was served a whole-layer experiment's list never saw the ranker,
and counting them would dilute its effect towards zero. Each stage runs under the
RECOMMENDER_TIMEOUT_MS deadline; a stage that fails or is too slow falls back (the
default retriever, or the retrieval order for ranking), and the response says so.

An interleaving experiment (docs/interleaving.md) decides its stage differently: both
of its variants' recommenders run for every user in it, at once under the one
deadline, and their lists are merged by team draft seeded with the request id; every
item carries the variant key of the team that placed it, and its served impression
stores that variant. When one of them fails or is too slow, the other's list is
served unmerged and unlabelled, so that request credits nobody."""

import concurrent.futures
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings

from core.outage import OutageBackoff
from events import live_history
from events.selectors import hidden_pins_of
from experiments.assignment import EMPTY_SURFACE, Assignment, ExperimentConfig, assign
from experiments.exposures import record_exposures_of, record_holdout_exposure
from experiments.interleaving import request_seed, team_draft
from experiments.runtime import current_config
from experiments.surfaces import effective_defaults
from recommenders.base import with_recent
from recommenders.data import InteractionData
from recommenders.registry import get as recommender_class
from recommenders.registry import names as registry_names
from recommenders.serving import LoadedModels, NotHeld, current_models
from serving.fallbacks import count_served
from serving.impressions import log_served

logger = logging.getLogger(__name__)

SURFACE = "closeup"
_pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="recommend")
# A closeup page is worth more than the hide filter during an outage: the grid is
# served without it (the response says so).
_hidden_pins = OutageBackoff("hidden-pin filtering of closeups")
# Likewise the live history: with Redis down or slow, one request waits
# LIVE_HISTORY_TIMEOUT_MS, then closeups use the built history alone until it is asked again.
_live_history = OutageBackoff("live history in closeups", errors=live_history.UNREACHABLE, service="Redis")


class NoModelsBuilt(Exception):
    """No recommender has been built yet: nothing to serve."""


class UnknownPin(LookupError):
    pass


@dataclass(frozen=True)
class CloseupItem:
    pin_id: int
    position: int
    score: float
    team: str | None = None  # interleaving: the variant key of the ranker that placed it


@dataclass(frozen=True)
class ShapedBy:
    """An experiment whose variant shaped the response (and so got an exposure)."""

    experiment: str
    variant: str
    layer: str


@dataclass(frozen=True)
class StageServed:
    stage: str  # whole, retrieval or ranking
    recommender: str  # the one that actually served the stage
    version: str | None  # its model version
    fallback_reason: str | None = None  # why the configured recommender did not serve it
    team: str | None = None  # interleaving: the variant whose recommender this is


@dataclass(frozen=True)
class Closeup:
    request_id: str
    pin_id: int
    user_id: str
    # Deprecated, kept for clients of one experiment per response: the first of
    # `assignments`, and the recommender that made the final order.
    experiment: str | None
    variant: str | None
    recommender: str
    fallback_reason: str | None
    hidden_pins_filtered: bool
    assignments: tuple[ShapedBy, ...]
    served_by: tuple[StageServed, ...]
    items: tuple[CloseupItem, ...]


@dataclass(frozen=True)
class _Request:
    pin: int  # the opened pin's index
    history: list
    k: int
    exclude: list[int]
    topics: object
    request_id: str


def serve_closeup(pin_id: int, user_id: str, k: int, attributes: dict) -> Closeup:
    models = current_models()
    if models is None:
        raise NoModelsBuilt()
    pin = models.catalog.pin_index(pin_id)
    if pin is None:
        raise UnknownPin(pin_id)

    config = current_config()
    surface = config.surfaces.get(SURFACE, EMPTY_SURFACE)
    # Today's defaults, a rollout's config for the users it reached, or a holdout's defaults as they were.
    stored = surface.defaults_for(user_id)
    defaults = effective_defaults(stored)
    assignments = assign(config, SURFACE, user_id, attributes)
    by_stage = _one_per_stage(assignments)
    history = _history(models.catalog, user_id)
    hidden = _hidden_pins.read(lambda: hidden_pins_of(user_id))
    exclude = [i for p in hidden or () if (i := models.catalog.pin_index(p)) is not None]
    request_id = str(uuid.uuid4())
    request = _Request(pin, history, k, exclude, models.user_topics(history), request_id)
    # Stages run when an experiment or a shipped default decides one; else one recommender makes the list.
    staged = "whole" not in by_stage and (by_stage or stored.get("retrieval") or stored.get("ranking"))
    if not staged:
        shaping = [by_stage["whole"]] if "whole" in by_stage else []
        ranked, served = _whole(models, by_stage.get("whole"), defaults["whole"], request)
    else:
        shaping = [by_stage[s] for s in ("retrieval", "ranking") if s in by_stage]
        ranked, served = _staged(models, by_stage.get("retrieval"), by_stage.get("ranking"), defaults, request)
    record_exposures_of(shaping, user_id, attributes)
    record_holdout_exposure(surface.holdout, user_id, attributes, forced=any(a.forced for a in assignments))
    count_served(_serving_counts(shaping, served))

    pin_ids = models.catalog.pin_ids
    # An interleaved list's entries are (index, score, team); every other list's (index, score).
    items = tuple(CloseupItem(int(pin_ids[entry[0]]), position, round(entry[1], 6), *entry[2:])
                  for position, entry in enumerate(ranked))
    log_served(request_id, datetime.now(UTC).isoformat(), user_id, items, _team_ids(shaping))
    shaped = tuple(ShapedBy(a.experiment.key, a.variant, a.experiment.layer) for a in shaping)
    reasons = [f"{s.stage}: {s.fallback_reason}" for s in served if s.fallback_reason]
    return Closeup(request_id=request_id, pin_id=pin_id, user_id=user_id,
                   experiment=shaped[0].experiment if shaped else None, variant=shaped[0].variant if shaped else None,
                   recommender=served[-1].recommender, fallback_reason="; ".join(reasons) or None,
                   hidden_pins_filtered=hidden is not None, assignments=shaped, served_by=served, items=items)


def _history(catalog: InteractionData, user_id: str) -> list[tuple[int, float]]:
    """The built history with the live one's engagements as its most recent; pins the
    held catalog does not know (newer than its build) are dropped."""
    built = catalog.history(user_id)
    live = _live_history.read(lambda: live_history.recent(user_id))
    if not live:
        return built
    return with_recent(built, [(i, w) for p, w in live if (i := catalog.pin_index(p)) is not None])


def _serving_counts(shaping: list[Assignment], served: tuple[StageServed, ...]) -> list[tuple[int, bool]]:
    """(variant id, fell back) per variant that was asked to serve: the user's own
    variant, and for an interleaving experiment both teams, each for itself."""
    fell_back = {s.stage for s in served if s.fallback_reason}
    counts = []
    for a in shaping:
        if a.experiment.design == "interleaving":
            merged = {s.team for s in served if s.team is not None}
            counts += [(v.id, v.key not in merged) for v in a.experiment.variants.values()]
        else:
            counts.append((a.experiment.variants[a.variant].id, a.experiment.stage in fell_back))
    return counts


def _team_ids(shaping: list[Assignment]) -> dict[str, int]:
    """Variant key → id, of the interleaving experiment that shaped the list (if one did)."""
    for a in shaping:
        if a.experiment.design == "interleaving":
            return {v.key: v.id for v in a.experiment.variants.values()}
    return {}


def _one_per_stage(assignments: list[Assignment]) -> dict[str, Assignment]:
    """The experiment that configures each stage: the first in assignment order (forced
    ones first, then the layers oldest first). A QA user forced into a retrieval or
    ranking variant must see it, so a whole-list experiment they merely hash into does
    not take the list over."""
    chosen: dict[str, Assignment] = {}
    for a in assignments:
        chosen.setdefault(a.experiment.stage, a)
    whole = chosen.get("whole")
    if whole is not None and not whole.forced and any(a.forced for s, a in chosen.items() if s != "whole"):
        del chosen["whole"]
    return chosen


def _stage_config(assignment: Assignment | None, default: dict | None) -> tuple[str | None, dict, str | None]:
    """The stage's (name, params, version): the user's variant's, else the surface
    default's (None: the stage has no default). Version None: the active one."""
    if assignment is not None:
        config = assignment.experiment.variants[assignment.variant].recommender
    elif default is not None:
        config = default
    else:
        return None, {}, None
    return config.get("name"), config.get("params") or {}, config.get("version")


def _retriever(config: dict) -> tuple[str, dict, str | None]:
    # A default that cannot retrieve (the ranker shipped as the whole list) hands
    # candidates over to the most basic retriever.
    name = config["name"]
    if name in registry_names() and "retrieval" in recommender_class(name).stages:
        return name, config.get("params") or {}, config.get("version")
    return "popularity", {}, None


def _whole(models: LoadedModels, assignment, default: dict, r: _Request) -> tuple[list, tuple[StageServed, ...]]:
    if assignment is not None and assignment.experiment.design == "interleaving":
        return _interleaved(models, "whole", assignment.experiment, r,
                            lambda rec: rec.related(r.pin, r.history, r.k, r.exclude, r.topics),
                            fallback=(settings.DEFAULT_RECOMMENDER, None,
                                      lambda rec: rec.related(r.pin, r.history, r.k, r.exclude, r.topics)))
    config = _stage_config(assignment, default)
    ranked, served = _run_stage(models, "whole", config,
                                lambda rec: rec.related(r.pin, r.history, r.k, r.exclude, r.topics),
                                fallback=(settings.DEFAULT_RECOMMENDER, None,
                                          lambda rec: rec.related(r.pin, r.history, r.k, r.exclude, r.topics)))
    return ranked, (served,)


def _staged(models: LoadedModels, retrieval, ranking, defaults: dict,
            r: _Request) -> tuple[list, tuple[StageServed, ...]]:
    config = _stage_config(retrieval, None) if retrieval is not None else _retriever(defaults["retrieval"])
    ranker = _stage_config(ranking, defaults["ranking"])
    n = max(r.k, settings.CLOSEUP_RANKING_CANDIDATES) if ranker[0] else r.k
    default = _retriever(defaults["whole"])[0]
    candidates, retrieved = _run_stage(models, "retrieval", config,
                                       lambda rec: rec.related(r.pin, r.history, n, r.exclude, r.topics),
                                       fallback=(default, None,
                                                 lambda rec: rec.related(r.pin, r.history, n, r.exclude, r.topics)))
    if ranker[0] is None:
        return candidates[: r.k], (retrieved,)
    if ranking is not None and ranking.experiment.design == "interleaving":
        ranked, ordered = _interleaved(models, "ranking", ranking.experiment, r,
                                       lambda rec: rec.rank([i for i, _ in candidates], r.pin, r.history, r.k,
                                                            r.topics),
                                       fallback=(retrieved.recommender, retrieved.version,
                                                 lambda _: candidates[: r.k]))
        return ranked, (retrieved, *ordered)
    ranked, ordered = _run_stage(models, "ranking", ranker,
                                 lambda rec: rec.rank([i for i, _ in candidates], r.pin, r.history, r.k, r.topics),
                                 fallback=(retrieved.recommender, retrieved.version, lambda _: candidates[: r.k]))
    return ranked, (retrieved, ordered)


def _run_stage(models: LoadedModels, stage: str, config: tuple[str, dict, str | None], call: Callable,
               fallback: tuple[str, str | None, Callable]) -> tuple[list, StageServed]:
    """One stage under the deadline, served by the configured version (pinned, else the
    active one); on failure, timeout, or a pinned version this process does not hold,
    the fallback serves it."""
    name, params, version = config
    reason, error = None, None
    try:
        # Restoring a recommender with unusual params happens once, outside the deadline.
        recommender = models.recommender(name, params, version)
        result = _pool.submit(call, recommender).result(timeout=settings.RECOMMENDER_TIMEOUT_MS / 1000)
        return result, StageServed(stage, name, models.served_version(name, version))
    except concurrent.futures.TimeoutError:
        reason = f"{name} took longer than {settings.RECOMMENDER_TIMEOUT_MS} ms"
    except NotHeld as exc:  # not built, or a pinned version this process does not hold: no traceback
        reason = str(exc)
    except Exception as exc:  # a broken recommender must not break the closeup page
        reason, error = f"{name} failed: {type(exc).__name__}: {exc}", exc
    fallback_name, fallback_version, fallback_call = fallback
    logger.warning("closeup %s stage: fallback to %s: %s", stage, fallback_name, reason, exc_info=error)
    result = fallback_call(models.recommender(fallback_name, version=fallback_version))
    return result, StageServed(stage, fallback_name, models.served_version(fallback_name, fallback_version), reason)


def _interleaved(models: LoadedModels, stage: str, experiment: ExperimentConfig, r: _Request, call: Callable,
                 fallback: tuple[str, str | None, Callable]) -> tuple[list, tuple[StageServed, ...]]:
    """Both teams' lists under one deadline, merged by team draft; one team's list
    unmerged when the other fails; the stage's fallback when both do."""
    teams = sorted(experiment.variants.values(), key=lambda v: (not v.is_control, v.key))
    deadline = time.monotonic() + settings.RECOMMENDER_TIMEOUT_MS / 1000
    pending, reasons = {}, {}
    for v in teams:
        name, params, version = _stage_config(None, v.recommender)
        try:
            pending[v.key] = (_pool.submit(call, models.recommender(name, params, version)), name, version)
        except Exception as exc:  # not built, or a pinned version this process does not hold
            reasons[v.key] = f"{name}: {exc}"
    lists = {}
    for key, (future, name, version) in pending.items():
        try:
            lists[key] = (future.result(timeout=max(0.0, deadline - time.monotonic())), name, version)
        except concurrent.futures.TimeoutError:
            reasons[key] = f"{name} took longer than {settings.RECOMMENDER_TIMEOUT_MS} ms"
        except Exception as exc:  # a broken ranker must not break the closeup page
            logger.warning("closeup %s stage: team %s failed", stage, key, exc_info=exc)
            reasons[key] = f"{name} failed: {type(exc).__name__}: {exc}"
    if len(lists) == len(teams):
        merged = team_draft({key: ranked for key, (ranked, _, _) in lists.items()}, r.k, request_seed(r.request_id))
        return ([(p.item, p.score, p.team) for p in merged],
                tuple(StageServed(stage, name, models.served_version(name, version), team=key)
                      for key, (_, name, version) in lists.items()))
    failed = "; ".join(f"team {key}: {reason}" for key, reason in reasons.items())
    logger.warning("closeup %s stage: interleaving off for this request: %s", stage, failed)
    if lists:
        key, (ranked, name, version) = next(iter(lists.items()))
        reason = f"interleaving off for this request ({failed}); {key}'s list served unmerged, no team credited"
        return list(ranked), (StageServed(stage, name, models.served_version(name, version), reason),)
    fallback_name, fallback_version, fallback_call = fallback
    ranked = fallback_call(models.recommender(fallback_name, version=fallback_version))
    return ranked, (StageServed(stage, fallback_name, models.served_version(fallback_name, fallback_version),
                                f"interleaving off for this request ({failed})"),)
