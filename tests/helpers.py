"""Helpers for tests that talk to real processes: a Celery worker, the test database URL."""

import os
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def database_url_for_other_processes():
    """A DATABASE_URL that lets another process open the database this test is using."""
    cfg = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{cfg['NAME']}"
    if connection.vendor == "postgresql":
        auth = cfg["USER"] or ""
        if cfg.get("PASSWORD"):
            auth += f":{cfg['PASSWORD']}"
        host = cfg["HOST"] or "127.0.0.1"
        port = cfg["PORT"] or 5432
        return f"postgres://{auth}@{host}:{port}/{cfg['NAME']}"
    raise RuntimeError(f"unsupported database vendor {connection.vendor}")


def child_environment(**extra):
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="leadsite.settings.test",
        DATABASE_URL=database_url_for_other_processes(),
        CELERY_TASK_ALWAYS_EAGER="false",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def start_celery_worker(log_path, **extra_env):
    """Start a real `celery worker` process against the configured broker and test database."""
    celery = Path(sys.executable).with_name("celery")
    command = [
        str(celery), "-A", "leadsite", "worker", "--loglevel", "INFO", "--pool", "solo",
        "--without-gossip", "--without-mingle", "--purge", "--hostname", "testworker@%h",
    ]
    log = open(log_path, "w")  # noqa: SIM115 - closed by stop_process
    process = subprocess.Popen(
        command, cwd=ROOT, env=child_environment(**extra_env), stdout=log,
        stderr=subprocess.STDOUT,
    )
    process.log_file = log
    ready = wait_until(
        lambda: process.poll() is not None or " ready." in Path(log_path).read_text(), timeout=60
    )
    if not ready or process.poll() is not None:
        stop_process(process)
        raise RuntimeError(f"Celery worker did not start:\n{Path(log_path).read_text()}")
    return process


def stop_process(process, timeout=15):
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log = getattr(process, "log_file", None)
    if log:
        log.close()


def wait_until(predicate, timeout=30.0, interval=0.2):
    """Poll `predicate` until it returns a truthy value or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()
