"""`make run`'s stack on the embedded defaults (SQLite, the filesystem broker) under
the simulator's load for several minutes: it stays up, a child killed with -9 is
brought back, the results keep refreshing, and the console stays readable."""

import json
import os
import signal
import sqlite3
import subprocess
import sys

import pytest

from demo import processes
from demo.processes import ROOT


def _demo_reports(db_path) -> tuple[int, int]:
    """(succeeded analyses of the demo experiment, variants with users in the latest)."""
    try:
        with sqlite3.connect(db_path, timeout=5) as db:
            rows = db.execute(
                "SELECT r.results FROM analysis_analysisreport r "
                "JOIN experiments_experiment e ON e.id = r.experiment_id "
                "WHERE e.key = 'closeup-recommenders' AND r.status = 'succeeded' ORDER BY r.id DESC",
            ).fetchall()
    except sqlite3.Error:
        return 0, 0
    if not rows:
        return 0, 0
    return len(rows), sum(1 for n in json.loads(rows[0][0])["srm"]["observed"].values() if n > 0)


def _celery_worker_master(serve_pid: int) -> int:
    for pid in processes.process_family(serve_pid)[1:]:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().split(b"\0")
        # The events and analyses worker, not the builds one (hostname builds@%h).
        if b"worker@%h" in cmdline and any(b"celery" in part for part in cmdline):
            parent = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
            if parent == serve_pid:
                return pid
    raise AssertionError("no Celery worker under serve")


@pytest.mark.integration
def test_make_run_stays_up_under_load_and_brings_back_a_killed_worker(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_URL", "CELERY_", "REDIS_", "LOG_LEVEL")) and k != "DJANGO_SETTINGS_MODULE"}
    env.update(PINPOINT_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="config.settings.local", PYTHONUNBUFFERED="1",
               SIMULATOR_RATE="8")
    manage = [sys.executable, "manage.py"]
    # make run's steps (Makefile): migrate, collectstatic, seed_demo, serve.
    for step in (["migrate", "--noinput", "-v0"], ["collectstatic", "--noinput", "-v0"]):
        subprocess.run(manage + step, cwd=ROOT, env=env, check=True, capture_output=True)
    seeded = subprocess.run(manage + ["seed_demo"], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    assert "[3/4] Building" in seeded.stdout and "Demo API key: pp_" in seeded.stdout
    port = processes.free_port()
    log_path = tmp_path / "serve.log"
    log = open(log_path, "wb")  # noqa: SIM115
    proc = subprocess.Popen(manage + ["serve", "--port", str(port), "--web-workers", "1", "--worker-concurrency", "1"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    db = tmp_path / "pinpoint.sqlite3"
    try:
        processes.wait_until(lambda: b"Pinpoint is up." in log_path.read_bytes(), timeout=90, what="the banner")
        banner = log_path.read_text()
        key = (tmp_path / "demo-api-key").read_text().strip()
        assert f"Demo API key: {key}" in banner and f"{base}/" in banner and "admin / pinpoint-demo" in banner
        status, body = processes.http_get(f"{base}/api/v1/closeup/1?user_id=u1&k=5",
                                          headers={"Authorization": f"Api-Key {key}"})
        assert status == 200 and len(json.loads(body)["items"]) == 5
        # The pages a new user meets: login, and Pinpoint's own 404 (DEBUG is off).
        status, body = processes.http_get(f"{base}/login/")
        assert status == 200 and b"password" in body
        status, body = processes.http_get(f"{base}/no/such/page")
        assert status == 404 and b"Back to the experiments" in body and b"URLconf" not in body
        # The simulator's traffic reaches the demo experiment, and the 30-second analysis
        # shows users in every variant.
        processes.wait_until(lambda: _demo_reports(db)[1] >= 3, timeout=240,
                             what="a demo analysis with users in every variant")
        # A worker killed outright (the OOM killer's way) is restarted, and work goes on.
        os.kill(_celery_worker_master(proc.pid), signal.SIGKILL)
        processes.wait_until(lambda: b"worker restarted" in log_path.read_bytes(), timeout=30,
                             what="serve to restart the killed worker")
        # Minutes of load after that: the analyses keep coming, nothing else dies.
        for _ in range(4):
            before = _demo_reports(db)[0]
            processes.wait_until(lambda before=before: _demo_reports(db)[0] > before, timeout=75,
                                 what="the next scheduled analysis")
        assert processes.http_get(f"{base}/readyz")[0] == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=40)
        log.close()
    output = log_path.read_text()
    assert output.count("exited with code") == 1, output[-3000:]
    assert "worker exited with code" in output
    assert "Stopped web, worker, builds, beat, simulator." in output
    # Quiet by default: no access log, no task log, no error on a clean stop.
    for noise in ("ERROR", "CRITICAL", "Traceback", '"GET /', "succeeded in"):
        assert noise not in output, f"{noise!r} in the console:\n{output[-3000:]}"
    children = subprocess.run(["pgrep", "-f", f"127.0.0.1:{port}"], capture_output=True, text=True).stdout
    assert children.strip() == ""
