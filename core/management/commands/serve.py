"""`make run`'s process supervisor: the web server, a Celery worker and Celery beat,
started together and stopped together."""

import os
import signal
import subprocess
import sys
import time
import urllib.request

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Run gunicorn, a Celery worker and Celery beat until Ctrl-C, then stop them all."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2")))
        parser.add_argument("--worker-concurrency", type=int, default=int(os.environ.get("CELERY_CONCURRENCY", "2")))
        parser.add_argument("--no-simulator", action="store_true",
                            default=os.environ.get("SIMULATOR", "on").lower() in ("off", "0", "false", "no"),
                            help="do not send simulated traffic to the demo experiment (or SIMULATOR=off)")
        parser.add_argument("--simulator-rate", type=float, default=float(os.environ.get("SIMULATOR_RATE", "4")),
                            help="simulated visits per second")

    def handle(self, *args, host, port, web_workers, worker_concurrency, no_simulator, simulator_rate, **options):
        py = sys.executable
        commands = {
            "web": [py, "-m", "gunicorn", "config.wsgi:application", "--bind", f"{host}:{port}",
                    "--workers", str(web_workers), "--access-logfile", "-", "--graceful-timeout", "10"],
            "worker": [py, "-m", "celery", "-A", "config.celery_app", "worker", "--loglevel", "INFO",
                       "--concurrency", str(worker_concurrency), "--hostname", "worker@%h"],
            "beat": [py, "-m", "celery", "-A", "config.celery_app", "beat", "--loglevel", "INFO", "--pidfile="],
        }
        procs: dict[str, subprocess.Popen] = {}
        extra: dict[str, subprocess.Popen] = {}
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            for name, cmd in commands.items():
                # Own session: Ctrl-C reaches only this supervisor, which then stops each
                # child in order instead of all of them racing.
                procs[name] = subprocess.Popen(cmd, start_new_session=True)
            url = f"http://{host}:{port}"
            healthy = self._wait_healthy(f"{url}/healthz", procs, lambda: stopping)
            if healthy and not no_simulator:
                # Traffic for the demo experiment; not essential: if it stops, the rest runs on.
                extra["simulator"] = subprocess.Popen(
                    [py, "manage.py", "simulate", "--base-url", url, "--users", "1000000000", "--rate",
                     str(simulator_rate), "--threads", "2", "--quiet"], start_new_session=True)
            if healthy:
                password = os.environ.get("DEMO_PASSWORD", "pinpoint-demo")
                broker = settings.CELERY_BROKER_URL.split("@")[-1]
                database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
                self.stdout.write(self.style.SUCCESS(
                    f"\nPinpoint is up.\n  Dashboard: {url}/\n  Admin:     {url}/admin/\n"
                    f"  API docs:  {url}/api/docs/\n  Demo login: admin / {password}\n"
                    f"  Broker: {broker}   Database: {database}\n"
                    + ("  Simulator: sending traffic to the demo experiment (SIMULATOR=off to stop it)\n"
                       if not no_simulator else "")
                    + "Press Ctrl-C to stop.\n"
                ))
            while not stopping:
                for name, proc in procs.items():
                    if proc.poll() is not None:
                        raise CommandError(f"{name} exited with code {proc.returncode}; stopping the rest.")
                time.sleep(0.5)
        finally:
            self._stop_all({**extra, **procs})

    def _wait_healthy(self, url, procs, is_stopping, timeout=60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not is_stopping():
            if procs["web"].poll() is not None:
                return False
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    if resp.status == 200:
                        return True
            except OSError:
                time.sleep(0.3)
        return False

    def _stop_all(self, procs):
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for name, proc in procs.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{name} did not stop in time; killing it.")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.stdout.write(f"Stopped {', '.join(procs)}.")
