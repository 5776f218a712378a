"""Exposures are written in batches by the serving process and counted exactly: a lost
exposure would show up later as a sample ratio mismatch."""

import subprocess
import sys
import textwrap
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from experiments import services
from experiments.models import Exposure
from tests import processes


def test_record_exposures_is_idempotent_and_keeps_the_first_time(running_experiment, db):
    variant = running_experiment.variants.get(key="control")
    t0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
    row = {"experiment_id": running_experiment.id, "variant_id": variant.id, "user_id": "u1",
           "at": t0 + timedelta(hours=1), "attributes": {"country": "US"}, "forced": False}
    services.record_exposures([row])
    services.record_exposures([row, {**row, "at": t0}])  # redelivered batch, plus an earlier sighting
    services.record_exposures([{**row, "at": t0 + timedelta(days=1)}])
    exposure = Exposure.objects.get()
    assert exposure.first_exposed_at == t0
    assert exposure.attributes == {"country": "US"}


def test_a_user_reported_in_another_variant_stays_in_the_first_and_is_marked(running_experiment, db):
    control, treatment = (running_experiment.variants.get(key=k) for k in ("control", "ranker"))
    t0 = datetime(2026, 1, 1, 12, tzinfo=UTC)

    def row(user, variant, hours):
        return {"experiment_id": running_experiment.id, "variant_id": variant.id, "user_id": user,
                "at": t0 + timedelta(hours=hours), "attributes": {}, "forced": False}

    services.record_exposures([row("steady", control, 1), row("cached", control, 1)])
    services.record_exposures([row("steady", control, 2), row("cached", treatment, 0)])  # earlier, elsewhere
    services.record_exposures([row("same-batch", treatment, 1), row("same-batch", control, 2)])
    services.record_exposures([row("cached", control, 3)])  # back in its own: still marked
    got = {e.user_id: (e.variant_id, e.other_variant, e.first_exposed_at) for e in Exposure.objects.all()}
    assert got["steady"] == (control.id, False, t0 + timedelta(hours=1))
    assert got["cached"] == (control.id, True, t0)
    assert got["same-batch"] == (treatment.id, True, t0 + timedelta(hours=1))


def test_exposures_of_deleted_experiments_are_dropped(running_experiment, db):
    variant = running_experiment.variants.first()
    row = {"experiment_id": running_experiment.id, "variant_id": variant.id, "user_id": "u",
           "at": datetime.now(UTC).isoformat(), "attributes": {}, "forced": False}
    running_experiment.delete()
    assert services.record_exposures([row]) == 0


# A process whose flusher thread is half-way through sending a batch when the process
# exits: the batch must still arrive. The send is slow on purpose, as a database write
# under load is, so the exit certainly lands inside it.
_EXITS_DURING_A_FLUSH = textwrap.dedent("""
    import sys, threading, time
    import django
    django.setup()
    from core.buffers import BatchBuffer

    out = open(sys.argv[1], "a")
    sending = threading.Event()

    def send(rows):
        sending.set()
        time.sleep(0.5)
        out.write("".join(f"{r}\\n" for r in rows))
        out.flush()

    buffer = BatchBuffer("probe", send, batch_size=lambda: 1000, flush_seconds=lambda: 0.05)
    for i in range(10):
        buffer.add(i)
    assert sending.wait(5), "the flusher thread never started sending"
    sys.exit(0)
""")


def test_a_process_exiting_while_its_flusher_sends_keeps_the_batch(tmp_path):
    sent = tmp_path / "sent.txt"
    done = subprocess.run([sys.executable, "-c", _EXITS_DURING_A_FLUSH, str(sent)], cwd=processes.ROOT,
                          env=processes.process_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert sorted(int(line) for line in sent.read_text().split()) == list(range(10))


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_exposure_counts_equal_distinct_assigned_users_once_the_buffer_flushes(
    running_experiment, key_client, settings
):
    settings.EXPOSURE_BATCH_SIZE = 100
    assigned: dict[str, str] = {}
    users = [f"user-{i}" for i in range(600)]
    # Every user asks more than once; single and batch calls mixed.
    for round_ in range(2):
        for user in users[:300]:
            body = key_client.post("/api/v1/assignments", {"user_id": user, "attributes": {"round": round_}},
                                   format="json").json()
            for a in body["assignments"]:
                assigned[user] = a["variant"]
        for i in range(300, 600, 100):
            batch = [{"user_id": u} for u in users[i:i + 100]]
            response = key_client.post("/api/v1/assignments/batch", {"users": batch}, format="json")
            for result in response.json()["results"]:
                for a in result["assignments"]:
                    assigned[result["user_id"]] = a["variant"]
    assert len(assigned) == 600

    # The background flusher writes them within EXPOSURE_FLUSH_SECONDS; no Celery hop.
    processes.wait_until(lambda: Exposure.objects.count() >= len(assigned), timeout=30,
                         what="the buffer to write every exposure")
    stored = dict(Exposure.objects.values_list("user_id", "variant__key"))
    assert stored == assigned  # every assigned user once, in the variant they were served
    per_variant = Counter(assigned.values())
    assert per_variant == Counter(stored.values())
