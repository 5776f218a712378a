"""Writes and workflows: loading a world into the catalog, building model versions."""

import hashlib
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from scipy import sparse

from recommenders import registry
from recommenders.data import InteractionData
from recommenders.models import Board, BoardPin, Interaction, ModelVersion, Pin
from recommenders.selectors import load_interaction_data
from recommenders.synthetic import World

CATALOG = "catalog"


@transaction.atomic
def import_world(world: World, replace: bool = True) -> dict:
    """Write a synthetic world's catalog, boards, saves and interactions."""
    if replace:
        for model in (Interaction, BoardPin, Board, Pin):
            model.objects.all().delete()
    data = world.data
    now = datetime.now(UTC)
    Pin.objects.bulk_create(
        [Pin(id=int(pid), title=world.pin_titles[i], topic=int(data.pin_topic[i]),
             created_at=now - timedelta(days=float(data.pin_age_days[i])))
         for i, pid in enumerate(data.pin_ids)], batch_size=5000)
    Board.objects.bulk_create(
        [Board(id=b + 1, name=f"{world.topic_names[int(t)]} board {b + 1}",
               owner=data.user_ids[int(world.board_owner[b])], topic=int(t))
         for b, t in enumerate(data.board_topic)], batch_size=5000)
    bp = data.board_pin.tocoo()
    BoardPin.objects.bulk_create(
        [BoardPin(board_id=int(b) + 1, pin_id=int(data.pin_ids[p])) for b, p in zip(bp.row, bp.col, strict=True)],
        batch_size=5000)
    up = data.user_pin.tocoo()
    Interaction.objects.bulk_create(
        [Interaction(user_id=data.user_ids[int(u)], pin_id=int(data.pin_ids[p]), weight=float(w),
                     at=now - timedelta(minutes=int(i)))
         for i, (u, p, w) in enumerate(zip(up.row, up.col, up.data, strict=True))], batch_size=5000)
    return {"pins": data.n_pins, "boards": len(data.board_topic), "saves": bp.nnz, "interactions": up.nnz}


def save_catalog(data: InteractionData, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    up = data.user_pin.tocsr()
    np.savez(folder / "catalog.npz", pin_ids=data.pin_ids, pin_topic=data.pin_topic, pin_age_days=data.pin_age_days,
             up_data=up.data, up_indices=up.indices, up_indptr=up.indptr, up_shape=np.asarray(up.shape),
             user_ids=np.asarray(data.user_ids, dtype=str))


def load_catalog(folder: Path) -> InteractionData:
    with np.load(folder / "catalog.npz", allow_pickle=False) as z:
        user_pin = sparse.csr_matrix((z["up_data"], z["up_indices"], z["up_indptr"]), shape=tuple(z["up_shape"]))
        n_pins = len(z["pin_ids"])
        return InteractionData(pin_ids=z["pin_ids"], pin_topic=z["pin_topic"], pin_age_days=z["pin_age_days"],
                               board_pin=sparse.csr_matrix((0, n_pins)), user_pin=user_pin,
                               user_ids=tuple(z["user_ids"].tolist()))


def catalog_fingerprint(data: InteractionData) -> str:
    """Identifies the pin index a model was built on: models built on the same pins
    can be served together even when built at different times."""
    return hashlib.sha256(np.ascontiguousarray(data.pin_ids).tobytes()).hexdigest()[:16]


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def build_all(names: list[str] | None = None, progress: Callable[[str], None] | None = None,
              data: InteractionData | None = None, activate: bool = True, job=None) -> list[ModelVersion]:
    """Build the catalog and every registered recommender into a new version, then
    make them active together (serving processes switch within seconds)."""
    names = names or registry.names()
    unknown = set(names) - set(registry.names())
    if unknown:
        raise ValueError(f"Unknown recommenders: {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    data = data or load_interaction_data()
    if data.n_pins == 0:
        raise ValueError("The catalog is empty: load pins first (seed_demo, or the synthetic world).")
    version = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    root = Path(settings.RECOMMENDER_MODELS_DIR)
    built = []
    folder = root / CATALOG / version
    save_catalog(data, folder)
    built.append((CATALOG, {}, folder, time.perf_counter() - started, None))
    if progress:
        progress(CATALOG)
    for name in names:
        t0 = time.perf_counter()
        recommender = registry.create(name, settings.RECOMMENDER_BUILD_PARAMS.get(name)).fit(data)
        folder = root / name / version
        recommender.save(folder)
        built.append((name, recommender.config, folder, time.perf_counter() - t0,
                      getattr(recommender, "training", None)))
        if progress:
            progress(name)
    with transaction.atomic():
        fingerprint = catalog_fingerprint(data)
        common = {"pins": data.n_pins, "catalog": fingerprint, "users": len(data.user_ids),
                  "interactions": int(data.user_pin.nnz)}
        rows = [ModelVersion.objects.create(name=n, version=version, params=p, path=str(f), build_seconds=s,
                                            size_bytes=_size(f), build_job=job,
                                            metrics={**common, **({"training": t} if t else {})})
                for n, p, f, s, t in built]
        if activate:
            activate_version(version, [n for n, *_ in built])
    return rows


def activate_version(version: str, names: list[str]) -> None:
    refused = list(ModelVersion.objects.filter(name__in=names, version=version, servable=False)
                   .values_list("name", flat=True))
    if refused:
        raise ValueError(f"{', '.join(sorted(refused))}@{version} failed the offline gate and is never served.")
    with transaction.atomic():
        ModelVersion.objects.filter(name__in=names, is_active=True).update(is_active=False)
        ModelVersion.objects.filter(name__in=names, version=version).update(is_active=True)


def prune(keep: int = 3) -> int:
    """Delete all but the newest `keep` inactive versions of each model, files too."""
    removed = 0
    for name in ModelVersion.objects.values_list("name", flat=True).distinct():
        old = ModelVersion.objects.filter(name=name, is_active=False).order_by("-built_at")[keep:]
        for v in old:
            shutil.rmtree(v.path, ignore_errors=True)
            v.delete()
            removed += 1
    return removed
