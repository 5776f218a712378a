"""`make run`'s stack on the embedded defaults: no PostgreSQL, no Redis."""

import os
import signal
import subprocess
import sys

import pytest

from tests import processes
from tests.processes import ROOT


@pytest.mark.integration
def test_serve_brings_up_web_worker_and_beat_on_embedded_defaults_and_stops_them(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_URL", "CELERY_", "REDIS_")) and k != "DJANGO_SETTINGS_MODULE"}
    env.update(PINPOINT_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="config.settings.local", PYTHONUNBUFFERED="1")
    manage = [sys.executable, "manage.py"]
    for step in (["migrate", "--noinput", "-v0"], ["seed_demo"]):
        subprocess.run(manage + step, cwd=ROOT, env=env, check=True, capture_output=True)
    port = processes.free_port()
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(manage + ["serve", "--port", str(port), "--web-workers", "1", "--worker-concurrency", "1"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        processes.wait_until(lambda: processes.http_get(f"{base}/healthz")[0] == 200, timeout=60, what="serve")
        assert processes.http_get(f"{base}/readyz")[0] == 200
        assert processes.http_get(f"{base}/api/docs/")[0] == 200
        status, body = processes.http_get(f"{base}/admin/login/")
        assert status == 200 and b"password" in body
        processes.wait_until(lambda: b"ready" in (tmp_path / "serve.log").read_bytes(), timeout=30,
                             what="the Celery worker to be ready")
        assert (tmp_path / "pinpoint.sqlite3").exists()
        # The supervisor polls /healthz itself before it prints the banner.
        processes.wait_until(lambda: b"Pinpoint is up." in (tmp_path / "serve.log").read_bytes(), timeout=30,
                             what="the banner with the URLs and the login")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        log.close()
    output = (tmp_path / "serve.log").read_text()
    assert "Stopped web, worker and beat." in output
    children = subprocess.run(["pgrep", "-f", f"127.0.0.1:{port}"], capture_output=True, text=True).stdout
    assert children.strip() == ""
