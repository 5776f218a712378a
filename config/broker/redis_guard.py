"""A Celery worker that outlives a Redis restart.

kombu 5.7's Redis transport kills the worker ("Unrecoverable error:
AttributeError: 'NoneType' object has no attribute ...") when the broker
connection drops while tasks are unacknowledged, in two places:

- closing the channel tries to put them back through a connection it has
  already released;
- a task that was running when the connection dropped finishes after the
  worker reconnected, and its (late) ack goes to the old, released channel.

Neither can reach the broker any more. If Redis is still there, those messages
are in its unacked set, from which any worker restores them after
visibility_timeout and runs them again (every task is idempotent); if Redis
restarted empty they are gone either way, and the inbox sweep re-enqueues the
event batches they named (the only tasks whose loss would matter: the others
are periodic). So on a released channel the worker forgets those deliveries
and lives on. Found by tests/core/test_faults_under_load.py (Redis restarted
under load); pinned by tests/core/test_broker_loss.py.
"""

import functools
import logging

from kombu.transport import redis as kombu_redis
from kombu.transport.virtual import base as kombu_virtual

logger = logging.getLogger(__name__)


def _released(channel) -> bool:
    connection = getattr(channel, "connection", None)
    return connection is None or getattr(connection, "client", None) is None


def _guard(method, forget):
    if getattr(method, "survives_broker_loss", False):
        return method

    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        if not _released(self.channel):
            try:
                return method(self, *args, **kwargs)
            except AttributeError:
                if not _released(self.channel):
                    raise  # not the released-channel case
        logger.warning("broker connection lost: %s; the message returns from Redis's unacked set after the "
                       "visibility timeout (if Redis kept it)", forget(self, *args, **kwargs))
        return None

    guarded.survives_broker_loss = True
    return guarded


def _forget_all(qos, client=None) -> str:
    count = len(qos._delivered)
    qos._delivered.clear()
    return f"{count} unacknowledged message(s) not restored"


def _forget_one(qos, delivery_tag, *args, **kwargs) -> str:
    kombu_virtual.QoS.ack(qos, delivery_tag)  # local bookkeeping only: no broker round trip
    return f"ack or reject of {delivery_tag} not sent"


def install() -> None:
    kombu_redis.QoS.restore_unacked = _guard(kombu_redis.QoS.restore_unacked, _forget_all)
    kombu_redis.QoS.ack = _guard(kombu_redis.QoS.ack, _forget_one)
    kombu_redis.QoS.reject = _guard(kombu_redis.QoS.reject, _forget_one)
