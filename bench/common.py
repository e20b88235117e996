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
# A copy of the standard page at the gated page's depth (one URL level more costs Wagtail's
# routing two queries), added by prepare_database for reference; the baseline stays STANDARD_URL.
DEEP_STANDARD_URL = "/ressourcen/bench-referenz/"
ADD_DEEP_STANDARD_PAGE = """
from wagtail.models import Page
from leadsite.models import StandardPage
source = StandardPage.objects.get(url_path__endswith="/ueber-uns/")
parent = Page.objects.get(url_path__endswith="/ressourcen/")
page = StandardPage(title=source.title, slug="bench-referenz", intro=source.intro, body=source.body)
parent.add_child(instance=page)
page.save_revision().publish()
"""


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
    """Migrate the throw-away database and load the demo content, as `make run` does, plus
    the reference page at DEEP_STANDARD_URL."""
    for command in (["migrate", "--noinput"], ["seed_demo"], ["shell", "-c", ADD_DEEP_STANDARD_PAGE]):
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
