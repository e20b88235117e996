"""Settings for the benchmarks: the development settings, with what a load test needs.

Use only with a throw-away database (`DATABASE_URL`) and throw-away folders for media and the
broker; the benchmark scripts set all of these to a temporary directory.
"""

from leadsite.settings.dev import *  # noqa: F401,F403
from leadsite.settings.dev import DATABASES, MIDDLEWARE, env

DEBUG = env.bool("DEBUG", default=False)

# Every request of a run comes from 127.0.0.1: lift the per-client limit (F7) so that the
# form is measured, not the "too many requests" answer.
INBOUND_SUBMISSIONS_PER_CLIENT_PER_HOUR = 10**9

# Confirmation mails are built and "sent" but go nowhere, unless EMAIL_URL names a sink.
if "EMAIL_URL" not in env.ENVIRON:
    EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"

# Count the database queries of every request in a response header (X-Bench-Queries).
MIDDLEWARE = ["bench.middleware.QueryCountMiddleware", *MIDDLEWARE]

# SQLite under concurrent writers from two gunicorn workers: take the write lock when a
# transaction starts (no SQLITE_BUSY on lock upgrade) and let readers go on during writes.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL;",
        "timeout": 30,
    })
