"""Health check: is the database reachable, and does a Celery worker answer?"""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from .models import WorkerHeartbeat

REQUEST_INTERVAL = timedelta(seconds=5)
HEARTBEAT_ID = 1


def request_heartbeat(now=None):
    """Stamp the heartbeat row and queue a task that answers it, at most once per interval.

    Returns the heartbeat row. The task is queued on commit, so a worker never sees
    a request that was rolled back.
    """
    from .tasks import answer_heartbeat

    now = now or timezone.now()
    with transaction.atomic():
        heartbeat, _created = WorkerHeartbeat.objects.select_for_update().get_or_create(
            pk=HEARTBEAT_ID
        )
        if heartbeat.requested_at is None or now - heartbeat.requested_at >= REQUEST_INTERVAL:
            heartbeat.requested_at = now
            heartbeat.save(update_fields=["requested_at"])
            answer_heartbeat.delay_on_commit()
    return heartbeat


def record_answer(worker_name, now=None):
    """Called by the worker: stamp the answer."""
    WorkerHeartbeat.objects.update_or_create(
        pk=HEARTBEAT_ID,
        defaults={"answered_at": now or timezone.now(), "answered_by": worker_name[:255]},
    )


def status(heartbeat):
    """A JSON-ready summary of the heartbeat."""
    answered = heartbeat.answered_at
    return {
        "database": "ok",
        "worker": {
            "requested_at": heartbeat.requested_at.isoformat() if heartbeat.requested_at else None,
            "answered_at": answered.isoformat() if answered else None,
            "answered_by": heartbeat.answered_by or None,
            "up_to_date": bool(
                answered and heartbeat.requested_at and answered >= heartbeat.requested_at
            ),
        },
    }
