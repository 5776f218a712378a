"""Schemathesis against /api/schema/: generated requests to every operation, with
valid credentials (an API key for the client endpoints, a token for the rest). No
response may be a 5xx, and documented responses must match their schema. A bounded
number of examples per operation here (SCHEMATHESIS_EXAMPLES, default 8); a longer
run: `SCHEMATHESIS_EXAMPLES=500 pytest tests/core/test_schemathesis.py`."""

import os

import pytest

schemathesis = pytest.importorskip("schemathesis")

from django.core.signals import request_finished, request_started  # noqa: E402
from django.db import close_old_connections  # noqa: E402
from hypothesis import HealthCheck  # noqa: E402
from hypothesis import settings as hypothesis_settings  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402

from accounts.services import create_api_key  # noqa: E402
from config.wsgi import application  # noqa: E402
from tests.factories import UserFactory  # noqa: E402

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
CLIENT_PATHS = ("/api/v1/assignments", "/api/v1/closeup", "/api/v1/events", "/api/v1/ping")
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "8"))


@pytest.fixture
def _keep_the_test_connection():
    # Requests go through the WSGI handler, whose request signals close the database
    # connection: that would end the test's transaction (Django's test client does the same).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def credentials(db, _keep_the_test_connection, settings, tmp_path):
    # A catalog and a built recommender, so the closeup endpoint serves (without them it
    # answers 503, correctly, and that would be all this test saw of it).
    from recommenders import services as recommender_services
    from recommenders.serving import holder
    from recommenders.synthetic import generate_world

    settings.RECOMMENDER_MODELS_DIR = tmp_path / "models"
    recommender_services.import_world(generate_world(n_pins=300, n_users=50, n_topics=4, seed=3))
    recommender_services.build_all(["popularity"])
    holder.invalidate()
    admin = UserFactory(username="schemathesis-admin", role="admin")
    token, _ = Token.objects.get_or_create(user=admin)
    yield {"client": f"Api-Key {create_api_key('schemathesis').key}", "management": f"Token {token.key}"}
    from experiments.exposures import buffer
    from serving.impressions import impressions

    buffer.clear()  # what the requests buffered must not be flushed after the test's database is gone
    impressions.clear()


@schema.parametrize()
@hypothesis_settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                     suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_documented_responses_conform(case, credentials):
    kind = "client" if case.path.startswith(CLIENT_PATHS) else "management"
    case.call_and_validate(headers={"Authorization": credentials[kind]},
                           checks=[not_a_server_error, response_schema_conformance])
