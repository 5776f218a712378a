import numpy as np
from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from events.models import Event
from experiments.models import Experiment, Holdout, Rollout, SurfaceDefault, Variant
from recommenders import offline_compare as oc
from recommenders.data import InteractionData, from_edges
from recommenders.models import Board, BoardPin, BuildJob, Interaction, ModelVersion, OfflineEvaluation, Pin


def load_interaction_data(since=None, until=None, min_logged: int | None = None) -> InteractionData:
    """The catalog and its graphs from the database, as arrays (values_list, no model instances).
    With `since`/`until`, only the interactions and logged engagements in [since, until):
    a retrain's training window."""
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
    interactions = Interaction.objects.filter(**_window("at", since, until))
    for user, pin, weight in interactions.order_by("at").values_list("user_id", "pin_id", "weight").iterator():
        u = user_index.setdefault(user, len(user_index))
        user_edges.append((u, index[pin], weight))
    for user, pin, weight in logged_engagements(since, until, min_logged):
        if pin in index:
            u = user_index.setdefault(user, len(user_index))
            user_edges.append((u, index[pin], weight))
    shown = [(user_index[user], index[pin]) for user, pin in unengaged_impressions(since, until)
             if user in user_index and pin in index]
    return from_edges(pin_ids, [p[1] for p in pins], age, board_edges, len(boards), user_edges, list(user_index),
                      [t for _, t in boards], impression_edges=shown or None)


def unengaged_impressions(since=None, until=None):
    """(user, pin) pairs served to the user that they never clicked or saved: the ranker's
    real negatives. The database finds them (an anti-join) and returns each pair once.
    With a window (a retrain's), only what happened in it: the held-out day stays unseen."""
    window = _window("occurred_at", since, until)
    engaged = Event.objects.filter(type__in=("click", "save"), user_id=OuterRef("user_id"), pin_id=OuterRef("pin_id"),
                                   **window)
    return (Event.objects.filter(type="impression", **window).filter(~Exists(engaged))
            .values_list("user_id", "pin_id").distinct().iterator())


def _window(field: str, since, until) -> dict:
    return {**({f"{field}__gte": since} if since else {}), **({f"{field}__lt": until} if until else {})}


def logged_engagements(since=None, until=None, min_logged: int | None = None) -> list[tuple[str, int, float]]:
    """Clicks and saves logged online, per (user, pin), once there are enough of them
    (RECOMMENDER_MIN_LOGGED_ENGAGEMENTS): the models then learn from what users did
    with the grids they were shown, beside the offline interaction data. The database
    aggregates; a save weighs 2, as in the interaction data."""
    engaged = Event.objects.filter(type__in=("click", "save"), **_window("occurred_at", since, until))
    minimum = settings.RECOMMENDER_MIN_LOGGED_ENGAGEMENTS if min_logged is None else min_logged
    if engaged.count() < minimum:
        return []
    rows = engaged.values("user_id", "pin_id").annotate(
        clicks=Count("event_id", filter=Q(type="click")), saves=Count("event_id", filter=Q(type="save")))
    return [(r["user_id"], r["pin_id"], float(r["clicks"] + 2 * r["saves"])) for r in rows.iterator()]


def held_out_engagements(since, until) -> dict[str, set[int]]:
    """Per user, the pins they engaged with in [since, until) (interactions, logged clicks
    and saves): what a retrain's gate asks each version to have recommended."""
    held: dict[str, set[int]] = {}
    for user, pin in Interaction.objects.filter(**_window("at", since, until)).values_list("user_id", "pin_id"):
        held.setdefault(user, set()).add(pin)
    engaged = Event.objects.filter(type__in=("click", "save"), **_window("occurred_at", since, until))
    for user, pin in engaged.values_list("user_id", "pin_id").distinct().iterator():
        held.setdefault(user, set()).add(pin)
    return held


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


def experiments_by_version() -> dict[tuple[str, str], list[str]]:
    """(name, version) -> keys of the experiments whose variants pin it, newest first."""
    found: dict[tuple[str, str], list[str]] = {}
    rows = Variant.objects.order_by("-experiment__created_at", "id").values_list("recommender", "experiment__key")
    for config, key in rows:
        if isinstance(config, dict) and isinstance(config.get("name"), str) and isinstance(config.get("version"), str):
            keys = found.setdefault((config["name"], config["version"]), [])
            if key not in keys:
                keys.append(key)
    return found


def recent_build_jobs(limit: int = 20) -> list[BuildJob]:
    return list(BuildJob.objects.order_by("-created_at", "-id")[:limit])


def latest_offline_ndcg() -> dict[str, dict[str, float]]:
    """{recommender: {dataset: NDCG@10 of its latest offline evaluation there}}."""
    latest: dict[str, dict[str, float]] = {}
    for row in OfflineEvaluation.objects.filter(k=10).order_by("-created_at", "-id"):
        latest.setdefault(row.recommender, {}).setdefault(row.dataset, row.ndcg)
    return latest


def model_versions(name: str) -> tuple[str | None, list[str], dict[str, str]]:
    """(the active version, every servable version newest first, the versions that failed
    their gate with why) of one recommender."""
    rows = list(ModelVersion.objects.filter(name=name).order_by("-built_at", "-id")
                .values_list("version", "is_active", "servable", "gate"))
    refused = {v: "; ".join((gate or {}).get("reasons") or ["it failed its offline gate"])
               for v, _, servable, gate in rows if not servable}
    return (next((v for v, active, *_ in rows if active), None), [v for v, _, servable, _ in rows if servable],
            refused)


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


def latest_evaluations() -> dict[str, dict[str, oc.Evaluation]]:
    """{recommender: {dataset: its latest offline evaluation at k=10 there}}."""
    latest: dict[str, dict[str, oc.Evaluation]] = {}
    rows = OfflineEvaluation.objects.filter(k=10).order_by("-created_at", "-id").values_list(
        "recommender", "dataset", "ndcg", "coverage", "users", "params")
    for name, dataset, ndcg, coverage, users, params in rows:
        latest.setdefault(name, {}).setdefault(dataset, oc.Evaluation(dataset, ndcg, coverage, users, params or {}))
    return latest


def offline_of_experiments(experiments) -> dict[int, oc.ExperimentOffline]:
    """Per experiment, each variant's offline numbers from the version it serves (its
    frozen or pinned `recommender.version`; a variant that pins none, of an experiment
    never started, reads the active version) and each treatment's offline difference from
    the control. Three queries whatever the number of experiments."""
    experiments = list(experiments)
    # A started experiment's unpinned variant had nothing built to freeze: today's active
    # version is not what it served.
    started = {e.pk for e in experiments if e.started_at is not None}
    variants = list(Variant.objects.filter(experiment__in=experiments).order_by("experiment_id", "id"))
    configs = {v.pk: v.recommender if isinstance(v.recommender, dict) else {} for v in variants}
    names = {c.get("name") for c in configs.values() if isinstance(c.get("name"), str)}
    rows = ModelVersion.objects.filter(name__in=names).values_list("name", "version", "is_active", "offline", "gate")
    by_version, active = {}, {}
    for name, version, is_active, offline, gate in rows:
        by_version[(name, version)] = (offline or {}, gate or {})
        if is_active:
            active[name] = version
    evaluations = latest_evaluations()
    arms: dict[int, list[oc.Arm]] = {e.pk: [] for e in experiments}
    for v in variants:
        name = configs[v.pk].get("name")
        name = name if isinstance(name, str) else ""
        version = configs[v.pk].get("version")
        if not isinstance(version, str):
            version = None if v.experiment_id in started else active.get(name)
        offline, gate = by_version.get((name, version), ({}, {}))
        arms[v.experiment_id].append(oc.Arm(v.key, v.is_control, name, version, offline, gate))
    return {pk: oc.compare(a, evaluations) for pk, a in arms.items()}


def experiment_offline(experiment) -> oc.ExperimentOffline:
    return offline_of_experiments([experiment])[experiment.pk]
