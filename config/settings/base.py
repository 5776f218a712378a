"""Settings shared by every environment.

Every environment variable the product reads is read here, through django-environ,
and listed in the README's configuration table. The other settings modules only
change defaults.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

VAR_DIR = Path(env("PINPOINT_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default=None)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- Database -----------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'pinpoint.sqlite3'}"),
}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.postgresql":
    _db.setdefault("OPTIONS", {})
    # A dead or hung database must fail fast (readiness answers within 2 s).
    _db["OPTIONS"].setdefault("connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=2))
    _db["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    _db["CONN_HEALTH_CHECKS"] = True
elif _db["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker write concurrently: WAL lets readers go on while
    # one writer commits, IMMEDIATE takes the write lock up front instead of failing
    # mid-transaction, and the timeout waits for it instead of raising "locked".
    _db.setdefault("OPTIONS", {})
    _db["OPTIONS"].update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Applications ---------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "core",
    "accounts",
    "experiments",
    "events",
    "recommenders",
    "serving",
    "analysis",
    "alerts",
    "dashboard",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:experiment-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "dashboard.staticfinders.VendorFinder",  # plotly.min.js from the plotly package (PyPI)
]
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(VAR_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Cache ----------------------------------------------------------------------
# Per-process by default; REDIS_CACHE_URL shares it between processes (throttling).
_cache_url = env("REDIS_CACHE_URL", default="")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url,
         # A dead Redis must cost a request milliseconds, not a hang (rate limits fail open).
         "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25}}
        if _cache_url
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- REST framework ---------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header turns a failed login into a 401.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.RolePermission"],
    "DEFAULT_RENDERER_CLASSES": ["core.api.renderers.FastJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.FastJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exceptions.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Pinpoint API",
    "DESCRIPTION": "A/B experimentation for recommender systems: assignment, closeup "
    "recommendations, events, experiments and results.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"EventTypeEnum": "events.validation.EVENT_TYPES", "StageEnum": "experiments.models.STAGES",
                            "DesignEnum": "experiments.models.DESIGNS"},
}

# Requests bodies above this are refused with 413 before they are parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_REQUEST_BYTES", default=5 * 1024 * 1024)

# --- API keys -------------------------------------------------------------------
# How long a verified (or refused) key is trusted in process memory: the bound on
# how long a revoked key keeps working.
API_KEY_CACHE_SECONDS = env.float("API_KEY_CACHE_SECONDS", default=5.0)

# --- Celery ---------------------------------------------------------------------
# Default: kombu's filesystem transport, a broker with no server, so that `make run`
# works with nothing installed while a real worker process still consumes.
# The host part means nothing to this transport; kombu warns on every connection without one.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://localhost/")
_broker_dir = VAR_DIR / "broker"
CELERY_BROKER_TRANSPORT_OPTIONS = {}
if CELERY_BROKER_URL.startswith("filesystem"):
    for sub in ("queue", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        "control_folder": str(_broker_dir / "control"),
        # kombu polls the folder and takes one message per poll: at its default 1 s a
        # worker does one task a second, and the demo's traffic outruns it.
        "polling_interval": 0.05,
    }
elif CELERY_BROKER_URL.startswith(("redis", "rediss")):
    # A message taken by a worker that then dies is restored to its queue once it
    # has been unacknowledged for visibility_timeout; the sweep that restores it runs
    # every unacked_restore_interval * unacked_restore_throttle seconds. 30 + 5 keeps
    # redelivery under a minute (kombu's default is an hour). Task time limits stay
    # below the visibility timeout, so a running task is never handed out twice.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=30),
        "unacked_restore_interval": 5,
        "unacked_restore_throttle": 1,
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
        "retry_on_timeout": True,
        "health_check_interval": 10,
    }
CELERY_RESULT_BACKEND = env(
    "CELERY_RESULT_BACKEND",
    default=(
        CELERY_BROKER_URL
        if CELERY_BROKER_URL.startswith(("redis", "rediss"))
        else f"file://{VAR_DIR / 'celery-results'}"
    ),
)
if CELERY_RESULT_BACKEND.startswith("file://"):
    Path(CELERY_RESULT_BACKEND.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
CELERY_RESULT_EXPIRES = 3600
# Results are kept only by tasks that ask for them (ignore_result=False): a task whose
# result nobody reads must not make publishing depend on the result backend too.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", default="pinpoint")
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_ENABLE_UTC = True
# Nothing accepted is lost: a task is acknowledged only after it ran, and a task
# whose worker process died is put back rather than dropped.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=20)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=25)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# A publish to a broker that is down fails within about a second, so the API can
# answer 503 instead of hanging.
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ROUTES = ("core.routing.route_task",)

# --- Logging --------------------------------------------------------------------
# Unset, each settings module picks its own level: INFO here, WARNING in `make run`
# (config.settings.local), whose console should show its banner and problems, not
# every request and task.
LOG_LEVEL_FROM_ENV = env("LOG_LEVEL", default="")
LOG_LEVEL = LOG_LEVEL_FROM_ENV or "INFO"
LOG_FORMAT = env("LOG_FORMAT", default="json")  # json | text
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "core.logging.JsonLinesFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
    },
}

# --- `make run`: the demo supervisor (demo/management/commands/serve.py) -----------
SERVE_HOST = env("HOST", default="127.0.0.1")
SERVE_PORT = env.int("PORT", default=8000)
SERVE_WEB_WORKERS = env.int("WEB_CONCURRENCY", default=2)
SERVE_WORKER_CONCURRENCY = env.int("CELERY_CONCURRENCY", default=2)
SIMULATOR_ENABLED = env("SIMULATOR", default="on").strip().lower() not in ("off", "0", "false", "no")
SIMULATOR_RATE = env.float("SIMULATOR_RATE", default=4.0)
DEMO_PASSWORD = env("DEMO_PASSWORD", default="pinpoint-demo")

# --- Assignment -----------------------------------------------------------------
# How often a serving process checks whether the experiment configuration changed.
ASSIGNMENT_CONFIG_CHECK_SECONDS = env.float("ASSIGNMENT_CONFIG_CHECK_SECONDS", default=1.0)
EXPOSURE_BATCH_SIZE = env.int("EXPOSURE_BATCH_SIZE", default=500)
EXPOSURE_FLUSH_SECONDS = env.float("EXPOSURE_FLUSH_SECONDS", default=0.5)
ASSIGNMENT_BATCH_MAX_USERS = 1000

# --- Event ingestion --------------------------------------------------------------
EVENTS_MAX_PER_REQUEST = env.int("EVENTS_MAX_PER_REQUEST", default=1000)
EVENTS_MAX_AGE_DAYS = env.int("EVENTS_MAX_AGE_DAYS", default=7)
EVENTS_MAX_FUTURE_SECONDS = env.int("EVENTS_MAX_FUTURE_SECONDS", default=300)
# A pending batch not finished this long after it was enqueued is enqueued again.
EVENTS_SWEEP_AFTER_SECONDS = env.int("EVENTS_SWEEP_AFTER_SECONDS", default=30)
EVENTS_MAX_ATTEMPTS = env.int("EVENTS_MAX_ATTEMPTS", default=10)
# A worker stores up to this many pending inbox batches (and about this many events) per transaction.
EVENTS_STORE_MAX_BATCHES = env.int("EVENTS_STORE_MAX_BATCHES", default=50)
EVENTS_STORE_MAX_ROWS = env.int("EVENTS_STORE_MAX_ROWS", default=20_000)
EVENTS_RETENTION_DAYS = env.int("EVENTS_RETENTION_DAYS", default=400)
EVENTS_PARTITIONS_AHEAD_DAYS = 7

# --- Recommenders ----------------------------------------------------------------
RECOMMENDER_MODELS_DIR = Path(env("RECOMMENDER_MODELS_DIR", default=str(VAR_DIR / "models")))
# What a user in no experiment gets, and what serves when a variant's recommender fails.
DEFAULT_RECOMMENDER = env("DEFAULT_RECOMMENDER", default="popularity")
# How many candidates the retrieval stage hands the ranking stage (at least k).
CLOSEUP_RANKING_CANDIDATES = env.int("CLOSEUP_RANKING_CANDIDATES", default=200)
RECOMMENDER_TIMEOUT_MS = env.int("RECOMMENDER_TIMEOUT_MS", default=200)
# How often a serving process checks whether another model version became active.
RECOMMENDER_RELOAD_CHECK_SECONDS = env.float("RECOMMENDER_RELOAD_CHECK_SECONDS", default=2.0)
# Model versions a serving process holds besides the active ones (pinned by running
# experiments or surface defaults); each costs its recommender's memory (docs/recommenders.md).
RECOMMENDER_MAX_PINNED_VERSIONS = env.int("RECOMMENDER_MAX_PINNED_VERSIONS", default=6)
# Logged clicks and saves join the training data once there are at least this many.
RECOMMENDER_MIN_LOGGED_ENGAGEMENTS = env.int("RECOMMENDER_MIN_LOGGED_ENGAGEMENTS", default=1000)

# Params every build gives a recommender instead of its defaults, as JSON:
# {"ranker": {"training_queries": 500}} trades the ranker's quality for build time.
RECOMMENDER_BUILD_PARAMS = env.json("RECOMMENDER_BUILD_PARAMS", default={})

# --- Builds and scheduled retraining (docs/recommenders.md, "Retraining") ----------
# Builds run on a queue of their own, on a worker with limits that fit them
# (docs/operations.md): minutes to hours, where every other task has seconds.
BUILD_QUEUE = env("BUILD_QUEUE", default="builds")
BUILD_TASK_TIME_LIMIT = env.int("BUILD_TASK_TIME_LIMIT", default=3 * 3600)
# A running build writes a heartbeat every BUILD_HEARTBEAT_SECONDS; one silent for
# BUILD_STALE_SECONDS lost its worker and runs again (at most BUILD_MAX_ATTEMPTS times).
BUILD_HEARTBEAT_SECONDS = env.int("BUILD_HEARTBEAT_SECONDS", default=15)
BUILD_STALE_SECONDS = env.int("BUILD_STALE_SECONDS", default=120)
BUILD_MAX_ATTEMPTS = env.int("BUILD_MAX_ATTEMPTS", default=3)
# The daily retrain: at RETRAIN_HOUR (UTC), new versions from the last RETRAIN_WINDOW_DAYS
# of interactions and logged engagements, the last RETRAIN_HOLDOUT_DAYS held out for the gate.
RETRAIN_ENABLED = env.bool("RETRAIN_ENABLED", default=True)
RETRAIN_HOUR = env.int("RETRAIN_HOUR", default=3)
RETRAIN_WINDOW_DAYS = env.int("RETRAIN_WINDOW_DAYS", default=28)
RETRAIN_HOLDOUT_DAYS = env.int("RETRAIN_HOLDOUT_DAYS", default=1)
# Empty: every registered recommender.
RETRAIN_RECOMMENDERS = env.list("RETRAIN_RECOMMENDERS", default=[])
# The gate: a new version may score at most this much below the version in use
# (absolute NDCG@10 and catalog coverage on the held-out day), over at least this many users.
RETRAIN_GATE_MAX_NDCG_DROP = env.float("RETRAIN_GATE_MAX_NDCG_DROP", default=0.01)
RETRAIN_GATE_MAX_COVERAGE_DROP = env.float("RETRAIN_GATE_MAX_COVERAGE_DROP", default=0.02)
RETRAIN_GATE_MIN_USERS = env.int("RETRAIN_GATE_MIN_USERS", default=30)

# --- Alerts: webhooks and email (docs/operations.md, "Alerts") ---------------------
# Webhook targets must resolve to public addresses (server-side request forgery);
# true lets them reach loopback and private networks, for development and tests.
WEBHOOK_ALLOW_PRIVATE_NETWORKS = env.bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS", default=False)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5.0)
# Attempts per delivery, the first retry's wait (doubling after each failure, at most an
# hour), and the failed attempts in a row after which a webhook is shown as failing.
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=8)
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=2.0)
WEBHOOK_FAILING_AFTER = env.int("WEBHOOK_FAILING_AFTER", default=5)
# The same alerts by email to the experiment's owner, through Django's email backend.
ALERT_EMAILS = env.bool("ALERT_EMAILS", default=True)
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="pinpoint@localhost")
# Where people open Pinpoint: the links in alerts (make run sets it to its own address).
PUBLIC_URL = env("PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")

# --- Live user history ------------------------------------------------------------
# Clicks and saves reach the closeup's history within seconds, not at the next build
# (docs/recommenders.md, "Live history"). Kept in Redis, shared by the ingestion worker
# that writes and the web processes that read; without a Redis URL, read from the events
# table, which every process shares (make run); LIVE_HISTORY_IN_MEMORY keeps it in the
# memory of the process instead (only a process that both stores and serves sees it: tests).
LIVE_HISTORY = env.bool("LIVE_HISTORY", default=True)
LIVE_HISTORY_REDIS_URL = env("LIVE_HISTORY_REDIS_URL", default=_cache_url)
LIVE_HISTORY_IN_MEMORY = env.bool("LIVE_HISTORY_IN_MEMORY", default=False)
LIVE_HISTORY_LENGTH = env.int("LIVE_HISTORY_LENGTH", default=20)
LIVE_HISTORY_TTL_SECONDS = env.int("LIVE_HISTORY_TTL_SECONDS", default=86_400)
# A closeup waits at most this long for Redis before it is served with the built history.
LIVE_HISTORY_TIMEOUT_MS = env.int("LIVE_HISTORY_TIMEOUT_MS", default=50)

# --- Rate limits ------------------------------------------------------------------
# Per API key on the client endpoints (assignment, closeup, events): N/second|minute|hour.
CLIENT_RATE_LIMIT = env("CLIENT_RATE_LIMIT", default="120000/minute")
# Failed logins per user name and address before the login form answers 429 for the window.
LOGIN_MAX_FAILURES = env.int("LOGIN_MAX_FAILURES", default=5)
LOGIN_LOCKOUT_SECONDS = env.int("LOGIN_LOCKOUT_SECONDS", default=300)

# --- Analysis ---------------------------------------------------------------------
ANALYSIS_ALPHA = env.float("ANALYSIS_ALPHA", default=0.05)
# holm (family-wise error), bh (false discovery rate) or none; see docs/statistics.md.
ANALYSIS_CORRECTION = env("ANALYSIS_CORRECTION", default="holm")
# A Celery analysis may take longer than the other tasks; the visibility timeout caps
# it on Redis, and an advisory lock keeps a redelivered copy from running it twice.
ANALYSIS_TASK_TIME_LIMIT = env.int("ANALYSIS_TASK_TIME_LIMIT", default=600)
