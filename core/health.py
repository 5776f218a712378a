"""Readiness checks: can this process reach the database and the broker?

Each check runs in a worker thread with a deadline, so a dependency that hangs
(accepts the connection, never answers) costs the probe its deadline, not forever.
"""

import concurrent.futures
import os
import socket
from dataclasses import dataclass
from urllib.parse import urlparse

from django.conf import settings
from django.db import connections

CHECK_DEADLINE_SECONDS = 1.5

_pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    reason: str = ""


def check_database(alias: str = "default") -> None:
    connection = connections[alias]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        # This thread's connection is not reused by request handling: close it.
        connection.close()


def check_broker(url: str | None = None, transport_options: dict | None = None) -> None:
    url = url or settings.CELERY_BROKER_URL
    options = transport_options if transport_options is not None else settings.CELERY_BROKER_TRANSPORT_OPTIONS
    scheme = urlparse(url).scheme
    if scheme in ("redis", "rediss"):
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
        finally:
            client.close()
    elif scheme in ("amqp", "pyamqp", "amqps"):
        from kombu import Connection

        with Connection(url, connect_timeout=1) as conn:
            conn.ensure_connection(max_retries=1, timeout=1)
    elif scheme == "filesystem":
        folder = options.get("data_folder_in", "")
        if not (os.path.isdir(folder) and os.access(folder, os.W_OK)):
            raise OSError(f"broker folder {folder!r} is missing or not writable")
    else:
        # Unknown transport: at least the host must accept a TCP connection.
        parsed = urlparse(url)
        with socket.create_connection((parsed.hostname or "localhost", parsed.port), timeout=1):
            pass


def run_checks() -> list[CheckResult]:
    checks = {"database": check_database, "broker": check_broker}
    futures = {name: _pool.submit(fn) for name, fn in checks.items()}
    done, _ = concurrent.futures.wait(futures.values(), timeout=CHECK_DEADLINE_SECONDS)
    results = []
    for name, future in futures.items():
        if future not in done:
            results.append(CheckResult(name, False, f"no answer within {CHECK_DEADLINE_SECONDS} s"))
        elif future.exception() is not None:
            exc = future.exception()
            results.append(CheckResult(name, False, f"{type(exc).__name__}: {exc}".strip()))
        else:
            results.append(CheckResult(name, True))
    return results
