import os
import socket

from celery import shared_task
from django.contrib.auth import get_user_model


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=False)
def ping(token: str) -> dict:
    """Round-trip probe: proves a worker consumed from the broker and reached the database."""
    return {
        "token": token,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "users": get_user_model().objects.count(),
    }
