# Importing the Celery app here makes `shared_task` bind to it in every process
# that loads Django (web, worker, beat, management commands).
from .celery_app import app as celery_app

__all__ = ("celery_app",)
