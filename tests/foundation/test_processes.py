"""Real processes: a Celery worker executes a task queued from a request; gunicorn serves the site."""

import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from django.utils import timezone

from leadsite.celery import app as celery_app
from leadsite.models import WorkerHeartbeat
from tests.helpers import child_environment, start_celery_worker, stop_process, wait_until


@pytest.fixture
def real_broker():
    """Queue onto the real broker instead of running tasks eagerly."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    yield celery_app
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def celery_worker_process(real_broker, tmp_path):
    process = start_celery_worker(tmp_path / "worker.log")
    yield process
    stop_process(process)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_task_queued_from_request_runs_on_real_worker(client, celery_worker_process, tmp_path):
    before = timezone.now()
    response = client.get("/-/health/")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"
    assert response.json()["worker"]["requested_at"] is not None

    def answered():
        row = WorkerHeartbeat.objects.filter(pk=1).first()
        return row if row and row.answered_at and row.answered_at >= row.requested_at else None

    row = wait_until(answered, timeout=60)
    log = (tmp_path / "worker.log").read_text()
    assert row is not None, f"worker never answered; its log:\n{log}"
    assert row.requested_at >= before
    assert row.answered_by.startswith("testworker@")
    assert celery_worker_process.poll() is None, "worker died"

    status = client.get("/-/health/").json()
    assert status["worker"]["up_to_date"] is True
    assert status["worker"]["answered_by"].startswith("testworker@")


def test_health_request_is_rate_limited(db, real_broker, django_capture_on_commit_callbacks):
    from leadsite import health

    with django_capture_on_commit_callbacks() as callbacks:
        first = health.request_heartbeat()
        second = health.request_heartbeat()
    assert first.requested_at == second.requested_at
    assert len(callbacks) == 1, "a burst of health checks queues one task, not one per request"
    assert WorkerHeartbeat.objects.count() == 1


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_gunicorn_serves_the_site_from_any_directory(demo_site, tmp_path):
    port = _free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    log = open(tmp_path / "gunicorn.log", "w")
    process = subprocess.Popen(
        [str(gunicorn), "leadsite.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=tmp_path, env=child_environment(DJANGO_SETTINGS_MODULE="leadsite.settings.dev",
                                            DEBUG="false"),
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        def fetch():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    return response.status, response.read().decode()
            except OSError:
                return None

        result = wait_until(fetch, timeout=30)
        assert result is not None, (tmp_path / "gunicorn.log").read_text()
        status, body = result
        assert status == 200
        assert demo_site.root_page.title in body
    finally:
        stop_process(process)
        log.close()
