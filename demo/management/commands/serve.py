"""`make run`'s supervisor command: the web server, a Celery worker, a builds worker,
Celery beat and the demo's simulator, each restarted if it dies, all stopped together
on Ctrl-C."""

import os
import signal
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from demo import processes
from demo.seed import saved_demo_key
from demo.supervisor import Supervisor


class Command(BaseCommand):
    help = ("Run gunicorn, a Celery worker, a builds worker, Celery beat (and the demo simulator) until Ctrl-C, "
            "restarting any that dies.")

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.SERVE_HOST)
        parser.add_argument("--port", type=int, default=settings.SERVE_PORT)
        parser.add_argument("--web-workers", type=int, default=settings.SERVE_WEB_WORKERS)
        parser.add_argument("--worker-concurrency", type=int, default=settings.SERVE_WORKER_CONCURRENCY)
        parser.add_argument("--no-simulator", action="store_true", default=not settings.SIMULATOR_ENABLED,
                            help="do not send simulated traffic to the demo experiment (or SIMULATOR=off)")
        parser.add_argument("--simulator-rate", type=float, default=settings.SIMULATOR_RATE,
                            help="simulated visits per second")

    def handle(self, *args, host, port, web_workers, worker_concurrency, no_simulator, simulator_rate, **options):
        url = f"http://{host}:{port}"
        level = settings.LOG_LEVEL.upper()
        web_args = ["--graceful-timeout", "10", "--log-level", level.lower()]
        if level in ("DEBUG", "INFO"):
            web_args += ["--access-logfile", "-"]
        children = {
            "web": processes.gunicorn_command(f"{host}:{port}", web_workers, *web_args),
            "worker": processes.celery_worker_command(worker_concurrency, "worker@%h", level),
            # Builds and retrains take minutes: a worker of their own, one at a time, so
            # events and analyses never wait behind them (docs/operations.md).
            "builds": processes.celery_worker_command(1, "builds@%h", level, "-Q", settings.BUILD_QUEUE),
            "beat": processes.celery_beat_command(level),
        }
        # Alerts link to the pages at this address unless PUBLIC_URL says otherwise.
        env = {**os.environ, "LOG_LEVEL": level, "PUBLIC_URL": os.environ.get("PUBLIC_URL", url)}
        supervisor = Supervisor(children, cwd=settings.BASE_DIR, env=env,
                                say=lambda line: self.stderr.write(self.style.WARNING(line)))
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            supervisor.start_all()
            announced, checked = False, 0.0
            warned = time.monotonic()
            while not stopping:
                supervisor.tend()
                # Until the web answers: then the simulator starts and the banner shows. A
                # web server that died on the way is restarted by tend() meanwhile.
                if not announced and time.monotonic() - checked >= 1.0 and supervisor.alive("web"):
                    checked = time.monotonic()
                    if processes.http_get(f"{url}/healthz", timeout=1)[0] == 200:
                        announced = True
                        if not no_simulator:
                            supervisor.add("simulator", [
                                sys.executable, "manage.py", "simulate", "--base-url", url, "--users", "1000000000",
                                "--rate", str(simulator_rate), "--threads", "2", "--quiet"])
                        self.stdout.write(self.style.SUCCESS(self._banner(url, simulator=not no_simulator,
                                                                          level=level)))
                    elif checked - warned >= 60:
                        warned = checked
                        self.stderr.write(f"The web server has not answered {url}/healthz yet; still trying.")
                time.sleep(0.5)
        finally:
            self.stdout.write("Stopping…")
            killed = supervisor.stop_all()
            for name in killed:
                self.stderr.write(f"{name} did not stop within 15 s and was killed.")
            self.stdout.write(f"Stopped {', '.join(supervisor.children)}.")

    def _banner(self, url: str, simulator: bool, level: str) -> str:
        key = saved_demo_key() or "(none yet: run `python manage.py seed_demo`)"
        database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        broker = settings.CELERY_BROKER_URL.split("@")[-1]
        lines = [
            "",
            "Pinpoint is up.",
            f"  Dashboard:    {url}/",
            f"  Log in as:    admin / {settings.DEMO_PASSWORD}   (also experimenter, viewer)",
            f"  Demo API key: {key}",
            f"  API docs:     {url}/api/docs/      Admin: {url}/admin/",
            f"  Try:          curl -H 'Authorization: Api-Key {key}' '{url}/api/v1/closeup/1?user_id=u1&k=5'",
            f"  Database: {database}   Broker: {broker}   Logs: {level} (LOG_LEVEL=INFO shows every request)",
        ]
        if simulator:
            lines.append("  Simulator: sending traffic to the demo experiment; results refresh every 30 s "
                         "(SIMULATOR=off to stop it)")
        lines.append("Press Ctrl-C to stop.")
        return "\n".join(lines) + "\n"
