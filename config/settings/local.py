"""`make run` on a laptop: an insecure development key unless one is given, quiet logs."""

from .base import *  # noqa: F403
from .base import LOG_LEVEL_FROM_ENV, env

# Off by default: a person trying the demo sees Pinpoint's own error pages, not Django's
# debug pages with settings and the URL list. DEBUG=true for development.
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="django-insecure-local-development-only")
LOG_FORMAT = env("LOG_FORMAT", default="text")
LOGGING["handlers"]["console"]["formatter"] = LOG_FORMAT  # noqa: F405
LOG_LEVEL = LOG_LEVEL_FROM_ENV or "WARNING"
LOGGING["root"]["level"] = LOG_LEVEL  # noqa: F405
# A receiver on this machine (a test server, a local Slack bridge) is the usual target here.
WEBHOOK_ALLOW_PRIVATE_NETWORKS = env.bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS", default=True)
