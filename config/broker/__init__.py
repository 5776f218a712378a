"""Where Pinpoint departs from kombu's stock transports, each in a module of its own
with the reason: `filesystem` (`make run`'s embedded broker, made safe for several
producers and consumers) and `redis_guard` (a worker that outlives a Redis restart).

`install()` runs in every process that loads the Celery app (web, worker, beat,
management commands), before any connection is made."""

from kombu.transport import TRANSPORT_ALIASES

from . import redis_guard

# `filesystem://` in CELERY_BROKER_URL means our transport, so the URL people know
# keeps working and no process can reach the racy stock one by accident.
FILESYSTEM_TRANSPORT = "config.broker.filesystem:Transport"


def install() -> None:
    TRANSPORT_ALIASES["filesystem"] = FILESYSTEM_TRANSPORT
    redis_guard.install()
