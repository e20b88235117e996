"""What both benchmark scripts share: a throw-away environment and the demo's URLs and forms."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")

STANDARD_URL = "/ueber-uns/"
GATED_URL = "/ressourcen/e-book-rechtssicheres-e-mail-marketing/"
CONTACT_URL = "/kontakt/"


def gated_form(email):
    """A valid submission of the demo e-book form: address, one extra answer, one consent."""
    return {"email": email, "firma": "ACME GmbH", "consent_email_nurture": "on", "website": ""}


def contact_form(email):
    return {"name": "Max Muster", "e_mail": email, "nachricht": "Bitte rufen Sie mich an."}


def bench_environment(tmp, eager=False):
    """Environment for child processes: everything under `tmp`, never the project's var/."""
    tmp = Path(tmp)
    broker = tmp / "celery"
    for folder in (broker / "queue", broker / "control", tmp / "media", tmp / "static"):
        folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "site")]),
        "DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite3'}",
        "MEDIA_ROOT": str(tmp / "media"),
        "STATIC_ROOT": str(tmp / "static"),
        "CELERY_BROKER_URL": "filesystem://",
        "CELERY_BROKER_FILESYSTEM_DIR": str(broker),
        "CELERY_TASK_ALWAYS_EAGER": "true" if eager else "false",
        "CACHE_URL": "locmemcache://",
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "DEBUG": "false",
        "LOG_LEVEL": "ERROR",
    })
    env.pop("EMAIL_URL", None)
    return env


def prepare_database(env):
    """Migrate the throw-away database and load the demo content, as `make run` does."""
    for command in (["migrate", "--noinput"], ["seed_demo"]):
        done = subprocess.run([PYTHON, str(ROOT / "manage.py"), *command], env=env, cwd=ROOT,
                              capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"manage.py {command[0]} failed:\n{done.stdout}{done.stderr}")


def use_environment_here(env):
    """Apply `env` to this process (before Django is set up)."""
    os.environ.update(env)
    for path in reversed(env["PYTHONPATH"].split(os.pathsep)):
        if path not in sys.path:
            sys.path.insert(0, path)
