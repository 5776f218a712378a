"""Real processes for integration tests: a Celery worker, a gunicorn server, a Redis.

Each runs with the test settings and points at the test database the session made,
so what a test writes (in a committed transaction) is what the process sees.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

from demo.processes import (  # noqa: F401  (tests use them from here)
    ROOT,
    celery_beat_command,
    celery_worker_command,
    free_port,
    gunicorn_command,
    http_get,
    process_family,
    stop,
    wait_until,
)


def test_database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}/{db['NAME']}"


def process_env(**overrides) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": test_database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_RESULT_BACKEND": settings.CELERY_RESULT_BACKEND,
            "CELERY_TASK_DEFAULT_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update({k: str(v) for k, v in overrides.items()})
    return env


@contextlib.contextmanager
def celery_worker(concurrency: int = 1, log_path: Path | None = None, queues: str | None = None, **env_overrides):
    log = open(log_path or os.devnull, "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        celery_worker_command(concurrency, f"test-{os.getpid()}-{time.monotonic_ns()}@%h", "INFO", "--pool", "prefork",
                              "--without-gossip", "--without-mingle", *(["-Q", queues] if queues else [])),
        cwd=ROOT, env=process_env(**env_overrides), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        stop(proc)
        log.close()


@contextlib.contextmanager
def web_server(workers: int = 1, log_path: Path | None = None, gunicorn_args: tuple = (), **env_overrides):
    port = free_port()
    log = open(log_path or os.devnull, "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        gunicorn_command(f"127.0.0.1:{port}", workers, "--timeout", "30", *gunicorn_args),
        cwd=ROOT, env=process_env(**env_overrides), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_get(f"{base}/healthz")[0] == 200, timeout=30, what="gunicorn to serve /healthz")
        yield base
    finally:
        stop(proc)
        log.close()


@contextlib.contextmanager
def redis_server():
    """A Redis of the test's own, on a free port, run as these machines run theirs
    (no persistence), so a test may kill it without touching the shared one."""
    binary = shutil.which("redis-server")
    if binary is None:
        import pytest

        pytest.skip("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )

    def up():
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
        return False

    try:
        wait_until(up, timeout=10, what="redis-server")
        yield proc, f"redis://127.0.0.1:{port}/0"
    finally:
        stop(proc, sig=signal.SIGKILL)


@contextlib.contextmanager
def blackhole_server():
    """A TCP port that accepts connections and never answers: a hung dependency."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@contextlib.contextmanager
def celery_beat(log_path: Path | None = None, **env_overrides):
    log = open(log_path or os.devnull, "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        celery_beat_command("INFO", "--max-interval", "2"),
        cwd=ROOT, env=process_env(**env_overrides), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        yield proc
    finally:
        stop(proc)
        log.close()


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL a process and everything in its session: nothing gets to clean up."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


class PostgresServer:
    """A PostgreSQL cluster of the test's own, on a free port, that a test may stop and
    start without touching the shared server. Its database `pinpoint` is a copy of the
    test database (pg_dump), so it holds what the test committed before."""

    def __init__(self, bindir: Path, datadir: Path, port: int):
        self.bindir, self.datadir, self.port = bindir, datadir, port
        self.url = f"postgres://postgres@127.0.0.1:{port}/pinpoint"

    def _as_owner(self, *cmd) -> list[str]:
        # initdb and postgres refuse to run as root.
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)

    def _ctl(self, *args) -> None:
        subprocess.run(self._as_owner(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-w", "-t", "60",
                                      *args), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self) -> None:
        self._ctl("-l", str(self.datadir / "server.log"), "-o",
                  f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1", "start")

    def stop(self, mode: str = "fast") -> None:
        """fast: clients are disconnected and the server shuts down cleanly;
        immediate: it stops as if it had crashed, and recovers from its WAL on start."""
        self._ctl("-m", mode, "stop")

    def connect(self, dbname: str = "pinpoint"):
        import psycopg

        return psycopg.connect(self.url.rsplit("/", 1)[0] + f"/{dbname}", autocommit=True, connect_timeout=5)


@contextlib.contextmanager
def postgres_server():
    import glob
    import tempfile

    import pytest

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        pytest.skip("PostgreSQL's server binaries are not installed")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start a PostgreSQL of the test's own")
    bindir = Path(found[-1]).parent
    top = Path(tempfile.mkdtemp(prefix="pinpoint-pg-"))
    datadir = top / "data"
    datadir.mkdir()
    if os.geteuid() == 0:
        shutil.chown(top, "postgres")
        shutil.chown(datadir, "postgres")
    server = PostgresServer(bindir, datadir, free_port())
    try:
        subprocess.run(server._as_owner(str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres", "-A", "trust",
                                        "-E", "UTF8", "--no-sync"),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        server.start()
        with server.connect("postgres") as conn:
            conn.execute("CREATE DATABASE pinpoint")
        # The newest installed server and its own client tools, which read any older server.
        dump = subprocess.run(
            [str(bindir / "pg_dump"), "--no-owner", "--no-privileges", "--dbname", test_database_url()],
            check=True, capture_output=True).stdout
        subprocess.run([str(bindir / "psql"), "-q", "-v", "ON_ERROR_STOP=1", "--dbname", server.url],
                       input=dump, check=True, stdout=subprocess.DEVNULL)
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop("immediate")
        shutil.rmtree(top, ignore_errors=True)
