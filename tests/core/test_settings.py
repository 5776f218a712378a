"""Configuration comes from the environment, read in config/settings/base.py."""

import json
import os
import subprocess
import sys

from tests.processes import ROOT

PROBE = """
import json, django
from django.conf import settings
django.setup()
db = settings.DATABASES["default"]
print(json.dumps({
    "engine": db["ENGINE"], "name": str(db["NAME"]), "host": db.get("HOST"), "port": db.get("PORT"),
    "options": {k: v for k, v in db.get("OPTIONS", {}).items() if isinstance(v, (int, str))},
    "broker": settings.CELERY_BROKER_URL, "transport": settings.CELERY_BROKER_TRANSPORT_OPTIONS,
    "result_backend": settings.CELERY_RESULT_BACKEND, "debug": settings.DEBUG,
    "allowed_hosts": settings.ALLOWED_HOSTS, "acks_late": settings.CELERY_TASK_ACKS_LATE,
    "reject_on_worker_lost": settings.CELERY_TASK_REJECT_ON_WORKER_LOST,
    "serializer": settings.CELERY_TASK_SERIALIZER, "accept": settings.CELERY_ACCEPT_CONTENT,
    "time_limit": settings.CELERY_TASK_TIME_LIMIT,
}))
"""

CONFIG_VARS = ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS")


def settings_under(module: str, tmp_path, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in CONFIG_VARS}
    clean.update({"DJANGO_SETTINGS_MODULE": module, "PINPOINT_VAR_DIR": str(tmp_path)}, **env)
    return subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True)


def read(module, tmp_path, **env) -> dict:
    result = settings_under(module, tmp_path, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_defaults_need_no_server(tmp_path):
    s = read("config.settings.local", tmp_path)
    assert s["engine"] == "django.db.backends.sqlite3"
    assert s["name"] == str(tmp_path / "pinpoint.sqlite3")
    assert s["broker"] == "filesystem://localhost/"
    assert s["transport"]["data_folder_in"] == str(tmp_path / "broker" / "queue")
    assert s["result_backend"].startswith("file://")
    assert s["debug"] is False  # make run shows Pinpoint's error pages, not Django's debug pages


def test_postgres_and_redis_from_env(tmp_path):
    s = read(
        "config.settings.local",
        tmp_path,
        DATABASE_URL="postgres://alice:pw@db.internal:6543/pinpoint",
        CELERY_BROKER_URL="redis://cache.internal:6380/2",
        ALLOWED_HOSTS="pinpoint.example.com,localhost",
    )
    assert s["engine"] == "django.db.backends.postgresql"
    assert (s["host"], s["port"], s["name"]) == ("db.internal", 6543, "pinpoint")
    assert s["options"]["connect_timeout"] == 2
    assert s["broker"] == "redis://cache.internal:6380/2"
    assert s["result_backend"] == "redis://cache.internal:6380/2"
    assert s["allowed_hosts"] == ["pinpoint.example.com", "localhost"]


def test_celery_is_configured_to_lose_nothing(tmp_path):
    s = read("config.settings.local", tmp_path, CELERY_BROKER_URL="redis://127.0.0.1:6379/0")
    assert s["acks_late"] and s["reject_on_worker_lost"]
    assert s["serializer"] == "json" and s["accept"] == ["json"]
    transport = s["transport"]
    # A task held by a killed worker comes back within a minute ...
    sweep = transport["unacked_restore_interval"] * transport["unacked_restore_throttle"]
    assert transport["visibility_timeout"] + sweep < 60
    # ... and a task still running is never mistaken for a lost one.
    assert s["time_limit"] < transport["visibility_timeout"]


def test_production_refuses_to_start_without_secret_key(tmp_path):
    result = settings_under("config.settings.production", tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_debug_is_off_and_deploy_check_is_clean(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARS}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        PINPOINT_VAR_DIR=str(tmp_path),
        SECRET_KEY="x7Gq2vL9pR4tW8yZ1bN6mK3jH5fD0sA-Qe7Ui9Op2As4Df6Gh8Jk0Lz",
        ALLOWED_HOSTS="pinpoint.example.com",
    )
    assert read("config.settings.production", tmp_path, SECRET_KEY=env["SECRET_KEY"])["debug"] is False
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
