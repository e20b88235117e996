"""The suite runs on the stack the environment asks for: SQLite or PostgreSQL, filesystem or Redis."""

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

from leadsite.celery import app as celery_app
from tests.helpers import ROOT


@pytest.mark.django_db
def test_database_vendor_matches_database_url():
    url = os.environ.get("DATABASE_URL", "")
    expected = "postgresql" if url.startswith(("postgres://", "postgresql://")) else "sqlite"
    assert connection.vendor == expected
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_broker_matches_celery_broker_url():
    url = os.environ.get("CELERY_BROKER_URL", "filesystem://")
    assert celery_app.conf.broker_url == url
    if url.startswith("filesystem://"):
        options = celery_app.conf.broker_transport_options
        assert options["data_folder_in"] == options["data_folder_out"]
        assert "test-celery" in options["data_folder_in"]


def test_default_settings_need_no_environment():
    """A fresh clone works with no variables: SQLite under var/, filesystem broker, mail files."""
    env = {k: v for k, v in os.environ.items() if k not in {
        "DATABASE_URL", "CELERY_BROKER_URL", "EMAIL_URL", "DJANGO_SETTINGS_MODULE", "SECRET_KEY",
    }}
    code = (
        "import django, json; from django.conf import settings; django.setup();"
        "print(json.dumps([settings.DATABASES['default']['ENGINE'], str(settings.DATABASES"
        "['default']['NAME']), settings.CELERY_BROKER_URL, settings.EMAIL_BACKEND,"
        " settings.EMAIL_FILE_PATH, settings.LANGUAGE_CODE]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd="/", env={**env, "DJANGO_SETTINGS_MODULE":
                                                     "leadsite.settings.dev"},
        capture_output=True, text=True, check=True,
    ).stdout
    engine, name, broker, mail_backend, mail_path, language = __import__("json").loads(out)
    assert engine == "django.db.backends.sqlite3"
    assert name == str(ROOT / "var" / "db.sqlite3")
    assert broker == "filesystem://"
    assert mail_backend == "django.core.mail.backends.filebased.EmailBackend"
    assert mail_path == str(ROOT / "var" / "mail")
    assert language == "de"


def _production_env(**overrides):
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "EMAIL_URL"}}
    env.update(
        DJANGO_SETTINGS_MODULE="leadsite.settings.production",
        SECRET_KEY="x7!k2Lq9#vR4mZ8pW1sT6yB3nC5fH0jD-realistic-production-secret-key",
        ALLOWED_HOSTS="www.beispiel-gmbh.example",
        DATABASE_URL="postgres://app:secret@db.internal:5432/app",
    )
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def test_production_settings_pass_check_deploy():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=_production_env(), capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_settings_refuse_to_start_without_secret_key():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT, env=_production_env(SECRET_KEY=None), capture_output=True, text=True,
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_settings_are_secure():
    code = (
        "import django; from django.conf import settings; django.setup();"
        "print(settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE,"
        " settings.SECURE_HSTS_SECONDS > 0, settings.DEBUG,"
        " 'whitenoise.middleware.WhiteNoiseMiddleware' in settings.MIDDLEWARE)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=_production_env(), capture_output=True,
        text=True, check=True,
    ).stdout.split()
    assert out == ["True", "True", "True", "False", "True"]


def test_tests_use_test_settings():
    assert settings.SETTINGS_MODULE == "leadsite.settings.test"
