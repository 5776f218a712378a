"""The model versions a serving process holds in memory, switched without a restart.

It holds every active version, and besides them each version that a running
experiment's variant or a surface default pins, up to RECOMMENDER_MAX_PINNED_VERSIONS
(defaults first, then experiments by start time). A version nobody pins any more is
dropped at the next reload: that is how versions are unloaded. The process checks the
active set and the pinned set at most every RECOMMENDER_RELOAD_CHECK_SECONDS
(core/held.py); when either moved, it loads the artifacts and swaps them in with one
assignment, so a request sees either the old set or the new. Instances per
(name, version, params) share the loaded arrays. While the database cannot be reached
the process goes on serving the models it holds.

Requests address pins by their index in the active catalog. A version built on other
pins (an older catalog) is loaded with its own catalog, and its answers are translated
through pin ids: indexes in, indexes out, pins its catalog lacks dropped.
"""

import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings

from core.held import HeldValue
from recommenders import registry
from recommenders.base import Recommender, top_topics
from recommenders.data import InteractionData
from recommenders.models import ModelVersion
from recommenders.selectors import active_signature, active_versions, pinned_versions
from recommenders.services import CATALOG, load_catalog

logger = logging.getLogger(__name__)


class NotHeld(LookupError):
    """The version a stage asks for is not in this process: never built, or not loaded (and why)."""


def _index_map(from_ids: np.ndarray, to_ids: np.ndarray) -> np.ndarray:
    """For each pin id of `from_ids`, its index in `to_ids`, -1 where it is absent."""
    if len(to_ids) == 0:
        return np.full(len(from_ids), -1, dtype=np.int64)
    order = np.argsort(to_ids, kind="stable")
    ordered = to_ids[order]
    at = np.clip(np.searchsorted(ordered, from_ids), 0, len(ordered) - 1)
    return np.where(ordered[at] == from_ids, order[at], -1).astype(np.int64)


class OnOtherPins:
    """A recommender built on another catalog, answering in the active catalog's indexes."""

    def __init__(self, inner: Recommender, to_own: np.ndarray, to_active: np.ndarray):
        self.inner, self.to_own, self.to_active = inner, to_own, to_active

    def _pin(self, pin: int) -> int:
        own = int(self.to_own[pin])
        if own < 0:
            raise LookupError("the opened pin is not in the catalog this version was built on")
        return own

    def _own(self, pins) -> list[int]:
        return [int(self.to_own[p]) for p in pins if self.to_own[p] >= 0]

    def _back(self, ranked) -> list[tuple[int, float]]:
        return [(int(self.to_active[i]), s) for i, s in ranked if self.to_active[i] >= 0]

    def related(self, pin, history, k, exclude=(), user_topics=None):
        history = [(int(self.to_own[p]), w) for p, w in history if self.to_own[p] >= 0]
        return self._back(self.inner.related(self._pin(pin), history, k, self._own(exclude), user_topics))

    def rank(self, candidates, pin, history, k, user_topics=None):
        history = [(int(self.to_own[p]), w) for p, w in history if self.to_own[p] >= 0]
        return self._back(self.inner.rank(self._own(candidates), self._pin(pin), history, k, user_topics))


@dataclass
class LoadedVersion:
    name: str
    version: str
    state: dict[str, np.ndarray]
    nbytes: int  # its arrays in memory, its own catalog's included when it has one
    to_own: np.ndarray | None = None  # set when built on other pins than the active catalog
    to_active: np.ndarray | None = None


@dataclass
class LoadedModels:
    signature: tuple  # the active (name, version) pairs, catalog included
    catalog: InteractionData  # the active one: requests address pins by its indexes
    active: dict[str, str]  # recommender -> active version
    pinned: tuple = ()  # the (name, version) pairs pinned when loaded, loaded or not
    loaded: dict[tuple[str, str], LoadedVersion] = field(default_factory=dict)
    unavailable: dict[tuple[str, str], str] = field(default_factory=dict)  # why a pinned version is not loaded
    _instances: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def wanted(self) -> tuple:
        return self.signature, self.pinned

    @property
    def states(self) -> dict[str, dict[str, np.ndarray]]:
        """The active versions' states by name."""
        return {name: self.loaded[(name, v)].state for name, v in self.active.items() if (name, v) in self.loaded}

    def served_version(self, name: str, version: str | None = None) -> str | None:
        return version or self.active.get(name)

    def recommender(self, name: str, params: dict | None = None, version: str | None = None) -> Recommender:
        """The instance serving `name` at `version` (None: the active one); NotHeld
        saying why when that version is not held."""
        version = self.served_version(name, version)
        if version is None:
            raise NotHeld(f"recommender {name!r} has no active built version")
        key = (name, version, json.dumps(params or {}, sort_keys=True))
        instance = self._instances.get(key)
        if instance is None:
            held = self.loaded.get((name, version))
            if held is None:
                reason = self.unavailable.get((name, version)) or (
                    "no running experiment or surface default pinned it when the models were last loaded")
                raise NotHeld(f"{name}@{version} is not loaded: {reason}")
            # One restore at a time and once per key: a restore can be slow, and some
            # libraries (LightGBM) must not load two models at once.
            with self._lock:
                instance = self._instances.get(key)
                if instance is None:
                    instance = registry.create(name, params or {})
                    instance.restore(held.state)
                    if held.to_own is not None:
                        instance = OnOtherPins(instance, held.to_own, held.to_active)
                    self._instances[key] = instance
        return instance

    def user_topics(self, history) -> np.ndarray | None:
        return top_topics(self.catalog.pin_topic, history)


def _nbytes(value) -> int:
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, InteractionData):
        up = value.user_pin
        return (value.pin_ids.nbytes + value.pin_topic.nbytes + value.pin_age_days.nbytes + up.data.nbytes
                + up.indices.nbytes + up.indptr.nbytes)
    return sum(_nbytes(v) for v in value.values())


class _Catalogs:
    """Catalogs by fingerprint, each loaded once, with its index maps to the active one."""

    def __init__(self, active_row: ModelVersion, active: InteractionData):
        self.active_fingerprint = active_row.metrics.get("catalog")
        self.active = active
        self._other: dict[str, tuple[InteractionData, np.ndarray, np.ndarray]] = {}

    def maps_for(self, row: ModelVersion) -> tuple[np.ndarray, np.ndarray, int] | None:
        """None when `row` was built on the active pins; else (to_own, to_active, catalog bytes)."""
        fingerprint = row.metrics.get("catalog")
        if fingerprint == self.active_fingerprint:
            return None
        if fingerprint not in self._other:
            # Every build writes its catalog under the same version string.
            own_row = ModelVersion.objects.filter(name=CATALOG, version=row.version).first()
            if own_row is None:
                raise FileNotFoundError(f"the catalog it was built on (catalog@{row.version}) is gone")
            own = load_catalog(Path(own_row.path))
            self._other[fingerprint] = (own, _index_map(self.active.pin_ids, own.pin_ids),
                                        _index_map(own.pin_ids, self.active.pin_ids))
        own, to_own, to_active = self._other[fingerprint]
        return to_own, to_active, _nbytes(own)


def _load_version(row: ModelVersion, catalogs: _Catalogs) -> LoadedVersion:
    with np.load(Path(row.path) / "state.npz", allow_pickle=False) as z:
        state = {k: z[k] for k in z.files}
    maps = catalogs.maps_for(row)
    to_own, to_active, catalog_bytes = maps if maps else (None, None, 0)
    loaded = LoadedVersion(row.name, row.version, state, _nbytes(state) + catalog_bytes, to_own, to_active)
    logger.info("loaded %s@%s: %.1f MB%s", row.name, row.version, loaded.nbytes / 1e6,
                " (built on other pins: answers translated)" if maps else "")
    return loaded


def load_models() -> LoadedModels | None:
    versions = active_versions()
    if CATALOG not in versions:
        return None
    pinned = pinned_versions()
    catalog = load_catalog(Path(versions[CATALOG].path))
    catalogs = _Catalogs(versions[CATALOG], catalog)
    active = {n: v.version for n, v in versions.items() if n != CATALOG and n in registry.names()}
    models = LoadedModels(signature=tuple(sorted((n, v.version) for n, v in versions.items())), catalog=catalog,
                          active=active, pinned=pinned)
    rows = [versions[n] for n in sorted(active)]
    extra = [(n, v) for n, v in pinned if active.get(n) != v and n in registry.names()]
    limit = settings.RECOMMENDER_MAX_PINNED_VERSIONS
    found = {(r.name, r.version): r for r in ModelVersion.objects.filter(name__in={n for n, _ in extra},
                                                                         version__in={v for _, v in extra})}
    for i, key in enumerate(extra):
        if i >= limit:
            models.unavailable[key] = (f"more versions are pinned than RECOMMENDER_MAX_PINNED_VERSIONS ({limit}) "
                                       "lets a process hold")
        elif key not in found:
            models.unavailable[key] = "no such version was built"
        elif not found[key].servable:
            models.unavailable[key] = "it failed its offline gate and is never served"
        else:
            rows.append(found[key])
    for row in rows:
        try:
            models.loaded[(row.name, row.version)] = _load_version(row, catalogs)
        except (OSError, ValueError) as exc:  # files gone or unreadable: that version's stages fall back
            reason = f"its files cannot be read ({type(exc).__name__}: {exc})"
            logger.error("not serving %s@%s: %s", row.name, row.version, reason)
            models.unavailable[(row.name, row.version)] = reason
    for name, version in list(models.loaded):
        # Restored now, with the default params, not in a request's time budget.
        models.recommender(name, version=version)
    return models


def held_bytes() -> dict[tuple[str, str], int]:
    """Memory of each version this process holds now (none loaded: empty), for reports."""
    models = holder.peek()
    return {key: v.nbytes for key, v in models.loaded.items()} if models else {}


holder: HeldValue[LoadedModels | None] = HeldValue(
    "recommender models", check_seconds=lambda: settings.RECOMMENDER_RELOAD_CHECK_SECONDS,
    version=lambda: (active_signature(), pinned_versions()), load=load_models,
    version_of=lambda models: models.wanted)
current_models = holder.get
