import logging
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

logger = logging.getLogger(__name__)

app = Celery("pinpoint")
# Every Celery setting lives in Django settings under the CELERY_ prefix.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _survive_broker_loss_with_unacked_messages() -> None:
    """kombu 5.7's Redis transport kills the worker ("Unrecoverable error:
    AttributeError: 'NoneType' object has no attribute 'hostname'") when the broker
    connection drops while tasks are unacknowledged: closing the channel tries to put
    them back through a connection it has already released. If Redis is still there,
    those messages are in its unacked set, from which any worker restores them after
    visibility_timeout; if Redis restarted empty they are gone either way, and the
    inbox sweep re-enqueues the event batches they named (the only tasks whose loss
    would matter: the others are periodic). So the worker skips that step and lives to
    reconnect. Found by tests/core/test_faults_under_load.py (Redis restarted under load)."""
    from kombu.transport import redis as kombu_redis

    original = kombu_redis.QoS.restore_unacked
    if getattr(original, "survives_broker_loss", False):
        return

    def restore_unacked(self, client=None):
        try:
            return original(self, client)
        except AttributeError:
            if getattr(self.channel.connection, "client", None) is not None:
                raise  # not the released-connection case
            logger.warning("broker connection lost with %d unacknowledged messages; they return from Redis's "
                           "unacked set after the visibility timeout (if it kept them)", len(self._delivered))
            self._delivered.clear()
            return None

    restore_unacked.survives_broker_loss = True
    kombu_redis.QoS.restore_unacked = restore_unacked


_survive_broker_loss_with_unacked_messages()
