"""`make run` on a laptop: debug on, an insecure development key unless one is given."""

from .base import *  # noqa: F403
from .base import LOG_LEVEL_FROM_ENV, env

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env("SECRET_KEY", default="django-insecure-local-development-only")
LOG_FORMAT = env("LOG_FORMAT", default="text")
LOGGING["handlers"]["console"]["formatter"] = LOG_FORMAT  # noqa: F405
LOG_LEVEL = LOG_LEVEL_FROM_ENV or "WARNING"
LOGGING["root"]["level"] = LOG_LEVEL  # noqa: F405
