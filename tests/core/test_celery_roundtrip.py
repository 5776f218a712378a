import pytest
from django.contrib.auth import get_user_model

from core.tasks import ping
from tests.factories import UserFactory


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_task_round_trip_through_real_worker_and_broker(celery_worker_process):
    UserFactory.create_batch(3)
    result = ping.apply_async(args=["round-trip"]).get(timeout=30)
    assert result["token"] == "round-trip"
    # Another process ran it: the worker, not this test process ...
    assert result["pid"] != celery_worker_process.pid  # a prefork child, not even the main worker
    import os

    assert result["pid"] != os.getpid()
    # ... and it reached the same (test) database this test wrote to.
    assert result["users"] == get_user_model().objects.count() == 3
