"""`make test`: the services named by DATABASE_URL and CELERY_BROKER_URL, or the
embedded defaults when those are unset."""

import os

from .base import *  # noqa: F403
from .base import DATABASES, VAR_DIR, env

DEBUG = False
SECRET_KEY = env("SECRET_KEY", default="test-only-secret-key-not-for-production")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["*"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not the in-memory default, so that a worker subprocess sees the
    # same test database as the test process.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}

# Each test session consumes from a queue of its own, so leftovers of an earlier
# run on a shared broker are never mistaken for this run's messages.
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", default=f"pinpoint-test-{os.getpid()}")
BUILD_QUEUE = f"{CELERY_TASK_DEFAULT_QUEUE}-builds"
# The live history in process memory unless a test names a Redis of its own: lists
# written in a shared Redis would outlive the run and reach another run's closeups.
LIVE_HISTORY_REDIS_URL = env("LIVE_HISTORY_REDIS_URL", default="")
LIVE_HISTORY_IN_MEMORY = env.bool("LIVE_HISTORY_IN_MEMORY", default=True)
# Quiet, readable logs unless a test (or a person) asks for more.
LOG_FORMAT = env("TEST_LOG_FORMAT", default="text")
LOGGING["handlers"]["console"]["formatter"] = LOG_FORMAT  # noqa: F405
LOGGING["root"]["level"] = env("TEST_LOG_LEVEL", default="WARNING")  # noqa: F405

# The analysis SQL runs on PostgreSQL and SQLite: when the default database is
# PostgreSQL, a second (SQLite) alias lets the same test check both in one run.
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["sqlite"] = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(VAR_DIR / "analysis-sqlite-check.sqlite3"),
        "TEST": {"NAME": str(VAR_DIR / f"test-sqlite-{os.getpid()}.sqlite3")},
    }
# The tests' webhook receivers listen on 127.0.0.1.
WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
# The tests build the ranker on small worlds many times and check its quality on
# MovieLens with its defaults (tests/recommenders/test_offline_evaluation.py): fewer
# training queries here keep each build to seconds.
RECOMMENDER_BUILD_PARAMS = {"ranker": {"training_queries": 150}}
