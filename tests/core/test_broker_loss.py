"""A Celery worker outlives its broker: Redis killed and restarted empty while a
late-acked task runs. The task finishes after the worker has reconnected, and its
ack is due on a channel that died with the old connection; the worker must go on
consuming, not exit ("Unrecoverable error"). CI caught the worker dying this way in
tests/core/test_faults_under_load.py, now and then; here the timing is certain: with
two pool slots and one task, the worker is waiting on Redis for a second message
when Redis dies, and kombu closes that channel after the connection it belonged to
(which is what left the channel unable to ack). Without config/celery_app.py's guard
this test fails every time."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from tests import processes

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not settings.CELERY_BROKER_URL.startswith("redis"),
                       reason="the Redis transport's broker loss (.ci/run)"),
]


def _start_redis(port: str) -> subprocess.Popen:
    return subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", port, "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def test_worker_survives_redis_restart_with_a_task_in_flight(tmp_path):
    from tests.core.celery_probe import hold_then_mark

    log = tmp_path / "worker.log"
    with processes.redis_server() as (redis_proc, url), log.open("wb") as log_file:
        port = url.rsplit(":", 1)[1].split("/")[0]
        queue = f"broker-loss-{time.monotonic_ns()}"
        env = processes.process_env(CELERY_BROKER_URL=url, CELERY_RESULT_BACKEND=url, CELERY_TASK_DEFAULT_QUEUE=queue)
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tests.core.celery_probe", "worker", "--loglevel", "INFO",
             "--concurrency", "2", "--without-gossip", "--without-mingle", "--hostname", f"{queue}@%h"],
            cwd=processes.ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        restarted = None
        try:
            first = str(tmp_path / "first")
            with hold_then_mark.app.connection_for_write(url) as conn:
                hold_then_mark.apply_async(args=[first, 5.0], queue=queue, connection=conn)
            processes.wait_until(lambda: Path(f"{first}.started").exists(), timeout=30, what="the task to start")
            time.sleep(0.5)

            redis_proc.send_signal(signal.SIGKILL)
            redis_proc.wait()
            time.sleep(1)
            restarted = _start_redis(port)  # empty: what the old one held is gone

            processes.wait_until(lambda: Path(f"{first}.done").exists(), timeout=30, what="the task to finish")
            time.sleep(3)  # its ack has been attempted by now
            assert worker.poll() is None, "the worker died:\n" + log.read_text()[-3000:]

            # And it still consumes from the new Redis.
            second = str(tmp_path / "second")
            with hold_then_mark.app.connection_for_write(url) as conn:
                hold_then_mark.apply_async(args=[second, 0.0], queue=queue, connection=conn)
            processes.wait_until(lambda: Path(f"{second}.done").exists(), timeout=60,
                                 what="the reconnected worker to run a new task")
        finally:
            processes.stop(worker)
            if restarted is not None:
                restarted.kill()
                restarted.wait()
