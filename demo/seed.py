"""The demo `make run` shows: users, an API key, a synthetic catalog with built
recommenders, and a running experiment analysed every 30 seconds. Every step is
idempotent, so `make run` can be run again on the same var/."""

from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from accounts.authentication import verify_key
from accounts.models import ApiKey
from accounts.roles import ADMIN, EXPERIMENTER, VIEWER, assign_role
from accounts.services import create_api_key, revoke_api_key
from experiments import services as experiment_services
from experiments.models import Experiment, Layer
from recommenders import services as recommender_services
from recommenders.models import ModelVersion, Pin
from recommenders.registry import names as recommender_names
from recommenders.synthetic import DEMO_WORLD, generate_world

DEMO_KEY_NAME = "demo"
DEMO_EXPERIMENT = "closeup-recommenders"
DEMO_USERS = (("admin", ADMIN, True), ("experimenter", EXPERIMENTER, False), ("viewer", VIEWER, False))


def demo_key_path() -> Path:
    # Keys are stored hashed, so the demo key's plaintext is kept in var/ (never
    # committed) to print the same key on every run.
    return Path(settings.VAR_DIR) / "demo-api-key"


def saved_demo_key() -> str | None:
    path = demo_key_path()
    return path.read_text().strip() if path.exists() else None


def users_and_key(password: str) -> str:
    User = get_user_model()
    with transaction.atomic():
        for username, role, superuser in DEMO_USERS:
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(password)
                user.is_superuser = superuser
                user.save()
            assign_role(user, role)
        key = saved_demo_key()
        if key and verify_key(key) is not None:
            return key
        for stale in ApiKey.objects.filter(name=DEMO_KEY_NAME, revoked_at__isnull=True):
            revoke_api_key(stale)
        issued = create_api_key(DEMO_KEY_NAME)
    path = demo_key_path()
    path.write_text(issued.key + "\n")
    path.chmod(0o600)
    return issued.key


def catalog() -> bool:
    """A small synthetic world, once; True if it was loaded now."""
    if Pin.objects.exists():
        return False
    recommender_services.import_world(generate_world(**DEMO_WORLD))
    return True


def recommenders_to_build() -> list[str]:
    return [] if ModelVersion.objects.filter(is_active=True).exists() else recommender_names()


def build_recommenders(progress: Callable[[str], None]) -> None:
    recommender_services.build_all(progress=progress)


def experiment() -> None:
    """The demo experiment on the closeup surface, running, and a 30-second analysis
    schedule so its results fill in while the simulator (started by `serve`) sends traffic."""
    if not Experiment.objects.filter(key=DEMO_EXPERIMENT).exists():
        owner = get_user_model().objects.get(username="experimenter")
        layer = Layer.objects.filter(key="closeup-demo").first() or experiment_services.create_layer(
            key="closeup-demo", name="Closeup demo")
        # Half of the users: a whole-list experiment decides every closeup it includes before
        # any experiment of a newer layer (docs/assignment.md), so at 100% an experiment a
        # person creates to try Pinpoint would get no traffic until they stopped this one.
        created = experiment_services.create_experiment(
            actor=owner, layer=layer, key=DEMO_EXPERIMENT, traffic_percent=50,
            name="Closeup recommenders: board co-occurrence and the learned ranker against popularity",
            hypothesis="Related pins from boards people save to, or ranked by a learned model, get more "
                       "clicks than the most popular pins of the topic.",
            variants=[
                {"key": "popularity", "weight": 34, "is_control": True, "recommender": {"name": "popularity"}},
                {"key": "board-cooccurrence", "weight": 33, "recommender": {"name": "board_cooccurrence"}},
                {"key": "ranker", "weight": 33, "recommender": {"name": "ranker"}},
            ],
            primary_metric="closeup_ctr", guardrail_metrics=["hide_rate"], minimum_detectable_effect=0.05,
        )
        experiment_services.transition(created, "start", actor=owner)
    every, _ = IntervalSchedule.objects.get_or_create(every=30, period="seconds")
    PeriodicTask.objects.get_or_create(
        name="Demo: refresh the analysis every 30 seconds",
        defaults={"task": "analysis.tasks.analyze_running_experiments", "interval": every,
                  "kwargs": '{"trigger": "schedule"}'},
    )
