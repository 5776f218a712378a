"""Shared pieces of the benchmarks: an isolated environment, a gunicorn server, wrk."""

import contextlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from demo import processes  # noqa: E402  (after the project root is on the path)
from demo.processes import process_family  # noqa: E402, F401  (the benches' memory readings use it)


def bench_env(name: str) -> dict:
    """Environment for a bench: its own var dir and SQLite file unless DATABASE_URL
    and CELERY_BROKER_URL name real services, and its own queue."""
    var = ROOT / "var" / f"bench-{name}"
    shutil.rmtree(var, ignore_errors=True)
    (var / "static").mkdir(parents=True)
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    env.update(
        PINPOINT_VAR_DIR=str(var), DEBUG="false", LOG_LEVEL="WARNING",
        CELERY_TASK_DEFAULT_QUEUE=f"bench-{name}", SECRET_KEY=secrets.token_urlsafe(32),
    )
    env.setdefault("CLIENT_RATE_LIMIT", "1000000000/minute")  # a bench measures speed, not the rate limit
    if env.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        env["DATABASE_URL"] = fresh_postgres_database(env["DATABASE_URL"], f"pinpoint_bench_{name}".replace("-", "_"))
    return env


def fresh_postgres_database(url: str, name: str) -> str:
    """A new, empty database of the bench's own on the server DATABASE_URL names:
    a bench never writes into the database it was pointed at."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def setup_django(env: dict) -> None:
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def start(command: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)


@contextlib.contextmanager
def gunicorn(env: dict, workers: int = 2):
    port = processes.free_port()
    proc = start(processes.gunicorn_command(f"127.0.0.1:{port}", workers, "--log-level", "warning"), env)
    base = f"http://127.0.0.1:{port}"
    try:
        if not processes.wait_healthy(f"{base}/healthz", timeout=60, alive=lambda: proc.poll() is None):
            raise RuntimeError("gunicorn did not start")
        yield base
    finally:
        processes.stop(proc, timeout=20)


def celery_worker(env: dict, concurrency: int) -> subprocess.Popen:
    return start(processes.celery_worker_command(concurrency, f"bench-{os.getpid()}@%h", "WARNING",
                                                 "--without-gossip", "--without-mingle"), env)


WRK_REPORT = """
done = function(summary, latency, requests)
  io.write(string.format('{"requests": %d, "seconds": %f, "p50_ms": %f, "p99_ms": %f, "errors": %d, "non2xx": %d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
"""


def wrk(url: str, lua_body: str, seconds: int = 10, connections: int = 16, threads: int = 1) -> dict:
    """Run wrk with a Lua request script; returns requests/s, p50 and p99 in ms."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua_body + WRK_REPORT)
        script = f.name
    try:
        out = subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "-s", script, url],
            capture_output=True, text=True, check=True,
        ).stdout
    finally:
        os.unlink(script)
    result = json.loads(out.strip().splitlines()[-1])
    result["rps"] = result["requests"] / result["seconds"]
    return result


def rss_mb(pids) -> float:
    """Resident memory of these processes together, in MB."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def median(values):
    return statistics.median(values)


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(h) for h in headers]] + [[f"{c:,.2f}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)
