import pytest
from rest_framework.test import APIClient

from accounts.authentication import verification_cache
from accounts.services import create_api_key
from events import live_history
from experiments.exposures import buffer
from experiments.runtime import holder as config_holder
from recommenders import services as recommender_services
from recommenders.serving import holder as models_holder
from recommenders.synthetic import generate_world
from serving import closeup
from serving.fallbacks import counts as serving_counts
from serving.impressions import impressions
from tests import processes
from tests.factories import UserFactory


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, and at the end of the session the connections
    that background threads of this process opened (exposure flushers, the live
    server) are closed on the server's side, so that dropping the database is not
    refused with "being accessed by other users" and no test database is left behind."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")


@pytest.fixture(autouse=True)
def _fresh_api_key_cache():
    # Key verifications are cached per process; tests must not see each other's.
    verification_cache.clear()
    yield
    verification_cache.clear()


@pytest.fixture(autouse=True)
def _fresh_serving_state():
    # Per-process state must not leak between tests: the held config and models, and
    # the buffers with their memory of exposures already sent.
    def reset():
        config_holder.invalidate()
        models_holder.invalidate()
        buffer.clear()
        impressions.clear()
        serving_counts.clear()
        live_history.reset()
        closeup._live_history.reset()

    reset()
    yield
    reset()


@pytest.fixture
def models_dir(settings, tmp_path):
    settings.RECOMMENDER_MODELS_DIR = tmp_path / "models"
    settings.RECOMMENDER_RELOAD_CHECK_SECONDS = 0
    return settings.RECOMMENDER_MODELS_DIR


@pytest.fixture
def world(db):
    w = generate_world(n_pins=600, n_users=150, n_topics=6, seed=5)
    recommender_services.import_world(w)
    return w


@pytest.fixture
def built(world, models_dir):
    # The fast ones; the learned recommenders have tests of their own.
    rows = recommender_services.build_all(["popularity", "board_cooccurrence", "pixie"])
    return rows[0].version


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def viewer(db):
    return UserFactory(username="viewer-user", role="viewer")


@pytest.fixture
def experimenter(db):
    return UserFactory(username="experimenter-user", role="experimenter")


@pytest.fixture
def admin_user(db):
    return UserFactory(username="admin-user", role="admin")


@pytest.fixture
def client_key(db):
    """An issued API key: (ApiKey row, plaintext key)."""
    issued = create_api_key("test-client")
    return issued.api_key, issued.key


@pytest.fixture
def key_client(client_key):
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Api-Key {client_key[1]}")
    return c


def as_user(user) -> APIClient:
    c = APIClient()
    c.force_login(user)
    return c


@pytest.fixture(scope="module")
def celery_worker_process(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real Celery worker process consuming this session's queue on the configured
    broker, against the test database. Tests that use it must commit what the worker
    should see (transactional_db). Module-scoped: tests that run workers of their own
    (the fault tests) must not find this one consuming their queue."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with django_db_blocker.unblock(), processes.celery_worker(concurrency=2, log_path=log) as proc:
        from core.tasks import ping

        processes.wait_until(lambda: _ping_ok(ping), timeout=60, what="the Celery worker to answer")
        yield proc


def _ping_ok(ping) -> bool:
    try:
        ping.apply_async(args=["ready"]).get(timeout=5)
        return True
    except Exception:
        return False
