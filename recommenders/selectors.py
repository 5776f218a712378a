import numpy as np
from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from events.models import Event
from experiments.models import Experiment, Holdout, Rollout, SurfaceDefault, Variant
from recommenders.data import InteractionData, from_edges
from recommenders.models import Board, BoardPin, Interaction, ModelVersion, OfflineEvaluation, Pin


def load_interaction_data() -> InteractionData:
    """The catalog and its graphs from the database, as arrays (values_list, no model instances)."""
    pins = list(Pin.objects.order_by("id").values_list("id", "topic", "created_at"))
    pin_ids = np.array([p[0] for p in pins], dtype=np.int64)
    index = {int(p): i for i, p in enumerate(pin_ids)}
    now = timezone.now()
    age = np.array([(now - p[2]).total_seconds() / 86400 for p in pins], dtype=np.float32)
    boards = list(Board.objects.order_by("id").values_list("id", "topic"))
    board_index = {b: i for i, (b, _) in enumerate(boards)}
    board_edges = [(board_index[b], index[p]) for b, p in BoardPin.objects.values_list("board_id", "pin_id").iterator()]
    user_index: dict[str, int] = {}
    user_edges = []
    for user, pin, weight in Interaction.objects.order_by("at").values_list("user_id", "pin_id", "weight").iterator():
        u = user_index.setdefault(user, len(user_index))
        user_edges.append((u, index[pin], weight))
    for user, pin, weight in logged_engagements():
        if pin in index:
            u = user_index.setdefault(user, len(user_index))
            user_edges.append((u, index[pin], weight))
    shown = [(user_index[user], index[pin]) for user, pin in unengaged_impressions()
             if user in user_index and pin in index]
    return from_edges(pin_ids, [p[1] for p in pins], age, board_edges, len(boards), user_edges, list(user_index),
                      [t for _, t in boards], impression_edges=shown or None)


def unengaged_impressions():
    """(user, pin) pairs served to the user that they never clicked or saved: the ranker's
    real negatives. The database finds them (an anti-join) and returns each pair once."""
    engaged = Event.objects.filter(type__in=("click", "save"), user_id=OuterRef("user_id"), pin_id=OuterRef("pin_id"))
    return (Event.objects.filter(type="impression").filter(~Exists(engaged))
            .values_list("user_id", "pin_id").distinct().iterator())


def logged_engagements() -> list[tuple[str, int, float]]:
    """Clicks and saves logged online, per (user, pin), once there are enough of them
    (RECOMMENDER_MIN_LOGGED_ENGAGEMENTS): the models then learn from what users did
    with the grids they were shown, beside the offline interaction data. The database
    aggregates; a save weighs 2, as in the interaction data."""
    engaged = Event.objects.filter(type__in=("click", "save"))
    if engaged.count() < settings.RECOMMENDER_MIN_LOGGED_ENGAGEMENTS:
        return []
    rows = engaged.values("user_id", "pin_id").annotate(
        clicks=Count("event_id", filter=Q(type="click")), saves=Count("event_id", filter=Q(type="save")))
    return [(r["user_id"], r["pin_id"], float(r["clicks"] + 2 * r["saves"])) for r in rows.iterator()]


def active_versions() -> dict[str, ModelVersion]:
    return {v.name: v for v in ModelVersion.objects.filter(is_active=True)}


def active_signature() -> tuple:
    return tuple(ModelVersion.objects.filter(is_active=True).order_by("name").values_list("name", "version"))


def versions_by_name() -> dict[str, list[ModelVersion]]:
    """Every built version per recommender, newest first (the catalog's too)."""
    by_name: dict[str, list[ModelVersion]] = {}
    for version in ModelVersion.objects.order_by("name", "-built_at", "-id"):
        by_name.setdefault(version.name, []).append(version)
    return by_name


def latest_offline_ndcg() -> dict[str, dict[str, float]]:
    """{recommender: {dataset: NDCG@10 of its latest offline evaluation there}}."""
    latest: dict[str, dict[str, float]] = {}
    for row in OfflineEvaluation.objects.filter(k=10).order_by("-created_at", "-id"):
        latest.setdefault(row.recommender, {}).setdefault(row.dataset, row.ndcg)
    return latest


def model_versions(name: str) -> tuple[str | None, list[str]]:
    """(the active version, every built version newest first) of one recommender."""
    rows = list(ModelVersion.objects.filter(name=name).order_by("-built_at", "-id").values_list("version", "is_active"))
    return next((v for v, active in rows if active), None), [v for v, _ in rows]


def pinned_versions() -> tuple[tuple[str, str], ...]:
    """(name, version) pairs that surface defaults, rollouts, holdouts and running experiments' variants pin,
    most important first: the defaults (everyone in no experiment), then experiments by
    start time, so a newly started one never pushes out one that was already serving."""
    configs = list(SurfaceDefault.objects.order_by("id").values_list("recommender", flat=True))
    # Rollouts in progress and the defaults a holdout's users keep are served to users in no experiment too.
    configs += list(Rollout.objects.filter(status=Rollout.Status.ROLLING).order_by("id")
                    .values_list("recommender", flat=True))
    for defaults in Holdout.objects.filter(is_active=True).order_by("id").values_list("defaults", flat=True):
        configs += [c for c in (defaults or {}).values() if c]
    configs += list(Variant.objects.filter(experiment__status=Experiment.Status.RUNNING)
                    .order_by("experiment__started_at", "experiment_id", "id").values_list("recommender", flat=True))
    pairs = [(c["name"], c["version"]) for c in configs
             if isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("version"), str)]
    return tuple(dict.fromkeys(pairs))
