import os
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.authentication import verify_key
from accounts.models import ApiKey
from accounts.roles import ADMIN, EXPERIMENTER, VIEWER, assign_role
from accounts.services import create_api_key, revoke_api_key

DEMO_KEY_NAME = "demo"
DEMO_EXPERIMENT = "closeup-recommenders"


class Command(BaseCommand):
    help = "Create the demo users and API key (idempotent). Prints the demo login and key."

    def handle(self, *args, **options):
        password = os.environ.get("DEMO_PASSWORD", "pinpoint-demo")
        with transaction.atomic():
            self._user("admin", password, ADMIN, superuser=True)
            self._user("experimenter", password, EXPERIMENTER)
            self._user("viewer", password, VIEWER)
            key = self._demo_key()
        self._catalog()
        self._experiment()
        self.stdout.write(f"Demo login: admin / {password} (also experimenter, viewer)")
        self.stdout.write(f"Demo API key: {key}")

    def _catalog(self):
        # A small synthetic world and its recommenders, once: the closeup endpoint needs both.
        from recommenders import services
        from recommenders.models import ModelVersion, Pin
        from recommenders.synthetic import DEMO_WORLD, generate_world

        if not Pin.objects.exists():
            services.import_world(generate_world(**DEMO_WORLD))
        if not ModelVersion.objects.filter(is_active=True).exists():
            services.build_all()

    def _experiment(self):
        """The demo experiment on the closeup surface, running, and a 30-second analysis
        schedule so its results fill in while the simulator (started by `serve`) sends traffic."""
        from django_celery_beat.models import IntervalSchedule, PeriodicTask

        from experiments import services
        from experiments.models import Experiment, Layer

        if not Experiment.objects.filter(key=DEMO_EXPERIMENT).exists():
            owner = get_user_model().objects.get(username="experimenter")
            layer = Layer.objects.filter(key="closeup-demo").first() or services.create_layer(
                key="closeup-demo", name="Closeup demo")
            experiment = services.create_experiment(
                actor=owner, layer=layer, key=DEMO_EXPERIMENT,
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
            services.transition(experiment, "start", actor=owner)
        every, _ = IntervalSchedule.objects.get_or_create(every=30, period="seconds")
        PeriodicTask.objects.get_or_create(
            name="Demo: refresh the analysis every 30 seconds",
            defaults={"task": "analysis.tasks.analyze_running_experiments", "interval": every,
                      "kwargs": '{"trigger": "schedule"}'},
        )

    def _user(self, username, password, role, superuser=False):
        User = get_user_model()
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_password(password)
            user.is_superuser = superuser
            user.save()
        assign_role(user, role)

    def _demo_key(self) -> str:
        # Keys are stored hashed, so the demo key's plaintext is kept in var/ (never
        # committed) to print the same key on every run.
        path = Path(settings.VAR_DIR) / "demo-api-key"
        if path.exists():
            key = path.read_text().strip()
            if verify_key(key) is not None:
                return key
        for stale in ApiKey.objects.filter(name=DEMO_KEY_NAME, revoked_at__isnull=True):
            revoke_api_key(stale)
        issued = create_api_key(DEMO_KEY_NAME)
        path.write_text(issued.key + "\n")
        path.chmod(0o600)
        return issued.key
