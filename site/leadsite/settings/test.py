"""Settings for pytest. DATABASE_URL and CELERY_BROKER_URL from the environment still apply,
so CI runs the same suite on SQLite with the filesystem broker and on PostgreSQL with Redis."""

import os

from .base import *  # noqa: F401,F403
from .base import CELERY_BROKER_URL, DATABASES, VAR_DIR, env

DEBUG = False
SECRET_KEY = env("SECRET_KEY", default="test-only-secret-key-with-enough-entropy-0123456789abcdef")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
WAGTAILADMIN_BASE_URL = "http://testserver"

# A file, not :memory:, so that a real Celery worker process can share the test database;
# one per test run, so that runs side by side do not collide.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")}

# Tests queue onto a broker folder of their own, never the one `make run` uses.
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "test-celery"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
    }
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
CELERY_TASK_EAGER_PROPAGATES = True
WHITENOISE_USE_FINDERS = True
# Tracked events are written at once, not by the per-process writer thread, so tests see them
# without waiting; tests/tracking/test_buffer.py covers the buffered path.
INBOUND_TRACKING_FLUSH_INTERVAL = 0
