"""The active model versions, held in process memory and switched without a restart.

A serving process checks the set of active versions at most every
RECOMMENDER_RELOAD_CHECK_SECONDS (core/held.py); when it changed, it loads the new
artifacts and swaps them in with one assignment, so a request sees either the old set
or the new. Instances per (name, params) share the loaded arrays. While the database
cannot be reached the process goes on serving the models it holds.
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
from recommenders.selectors import active_signature, active_versions
from recommenders.services import CATALOG, load_catalog

logger = logging.getLogger(__name__)


@dataclass
class LoadedModels:
    signature: tuple
    catalog: InteractionData
    states: dict[str, dict[str, np.ndarray]]
    _instances: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def recommender(self, name: str, params: dict | None = None) -> Recommender:
        key = (name, json.dumps(params or {}, sort_keys=True))
        instance = self._instances.get(key)
        if instance is None:
            if name not in self.states:
                raise LookupError(f"recommender {name!r} has no active built version")
            # One restore at a time and once per key: a restore can be slow, and some
            # libraries (LightGBM) must not load two models at once.
            with self._lock:
                instance = self._instances.get(key)
                if instance is None:
                    instance = registry.create(name, params or {})
                    instance.restore(self.states[name])
                    self._instances[key] = instance
        return instance

    def user_topics(self, history) -> np.ndarray | None:
        return top_topics(self.catalog.pin_topic, history)


def load_models() -> LoadedModels | None:
    versions = active_versions()
    if CATALOG not in versions:
        return None
    catalog = load_catalog(Path(versions[CATALOG].path))
    states = {}
    for name, version in versions.items():
        if name == CATALOG or name not in registry.names():
            continue
        if version.metrics.get("catalog") != versions[CATALOG].metrics.get("catalog"):
            logger.warning("%s@%s was built on other pins than the active catalog; not serving it",
                           name, version.version)
            continue
        with np.load(Path(version.path) / "state.npz", allow_pickle=False) as z:
            states[name] = {k: z[k] for k in z.files}
    signature = tuple(sorted((n, v.version) for n, v in versions.items()))
    models = LoadedModels(signature=signature, catalog=catalog, states=states)
    for name in states:  # restored now, with the default params, not in a request's time budget
        models.recommender(name)
    return models


holder: HeldValue[LoadedModels | None] = HeldValue(
    "recommender models", check_seconds=lambda: settings.RECOMMENDER_RELOAD_CHECK_SECONDS,
    version=active_signature, load=load_models, version_of=lambda models: models.signature)
current_models = holder.get
