"""Starting and stopping Pinpoint's processes, written once for `serve`, the tests and
the benches: the commands for gunicorn, a Celery worker and beat, a free port, waiting
for an HTTP health check, and stopping a process with everything it started.

Standard library only: no Django, so a bench can use it before settings exist."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gunicorn_command(bind: str, workers: int, *extra: str, python: str = sys.executable) -> list[str]:
    return [python, "-m", "gunicorn", "config.wsgi:application", "--bind", bind, "--workers", str(workers), *extra]


def _celery(python: str, loglevel: str) -> list[str]:
    # Quiet (-q) leaves out the start-up banner, as the log level leaves out the rest.
    quiet = ["-q"] if loglevel.upper() not in ("DEBUG", "INFO") else []
    return [python, "-m", "celery", *quiet, "-A", "config.celery_app"]


def celery_worker_command(concurrency: int, hostname: str, loglevel: str = "INFO", *extra: str,
                          python: str = sys.executable) -> list[str]:
    return [*_celery(python, loglevel), "worker", "--loglevel", loglevel, "--concurrency", str(concurrency),
            "--hostname", hostname, *extra]


def celery_beat_command(loglevel: str = "INFO", *extra: str, python: str = sys.executable) -> list[str]:
    return [*_celery(python, loglevel), "beat", "--loglevel", loglevel, "--pidfile=", *extra]


def http_get(url: str, timeout: float = 5.0, headers: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


def wait_healthy(url: str, timeout: float, alive=lambda: True, stopping=lambda: False) -> bool:
    """True once `url` answers 200; False if `alive()` turns false, `stopping()` true,
    or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive() and not stopping():
        if http_get(url, timeout=1)[0] == 200:
            return True
        time.sleep(0.3)
    return False


def stop(*procs: subprocess.Popen, timeout: float = 15, sig=signal.SIGTERM) -> list[subprocess.Popen]:
    """Ask each process itself to stop, all at once (gunicorn's and Celery's masters
    then stop their own children in order: a signal to the whole group makes them log
    each child's death as an error), then kill the whole group of any that has not
    stopped in time. Returns those that had to be killed."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
    deadline = time.monotonic() + timeout
    killed = []
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            killed.append(proc)
        # Whatever it left behind in its session (a stray child) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return killed


def process_family(pid: int) -> list[int]:
    """A process and all its descendants."""
    family, frontier = [pid], [pid]
    while frontier:
        out = subprocess.run(["pgrep", "-P", str(frontier.pop())], capture_output=True, text=True).stdout
        children = [int(p) for p in out.split()]
        family += children
        frontier += children
    return family
