"""`make run`'s stack on the embedded defaults: no PostgreSQL, no Redis."""

import json
import os
import signal
import sqlite3
import subprocess
import sys

import pytest

from tests import processes
from tests.processes import ROOT


def _demo_users(db_path) -> int:
    """Variants of the demo experiment with users in its latest analysis."""
    try:
        with sqlite3.connect(db_path, timeout=5) as db:
            row = db.execute(
                "SELECT r.results FROM analysis_analysisreport r "
                "JOIN experiments_experiment e ON e.id = r.experiment_id "
                "WHERE e.key = 'closeup-recommenders' AND r.status = 'succeeded' ORDER BY r.id DESC LIMIT 1",
            ).fetchone()
    except sqlite3.Error:
        return 0
    if not row:
        return 0
    return sum(1 for n in json.loads(row[0])["srm"]["observed"].values() if n > 0)


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
        # The demo: the simulator's traffic reaches the running demo experiment, and the
        # scheduled analysis (every 30 s in the demo) shows it with users in every variant.
        processes.wait_until(lambda: _demo_users(tmp_path / "pinpoint.sqlite3") >= 3, timeout=240,
                             what="a demo analysis with users in every variant")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        log.close()
    output = (tmp_path / "serve.log").read_text()
    assert "Stopped simulator, web, worker, beat." in output
    children = subprocess.run(["pgrep", "-f", f"127.0.0.1:{port}"], capture_output=True, text=True).stdout
    assert children.strip() == ""
