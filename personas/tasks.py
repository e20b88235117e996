"""Celery entry points. Thin: each calls a plain function of the app."""

from celery import shared_task
from django.db import DatabaseError

from inbound.leads import Lead

from . import assignment


@shared_task(ignore_result=True, acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=2,
             retry_backoff_max=300, max_retries=6)
def recompute_lead_personas(lead_ids):
    """After a submission, confirmation, download, consented event or consent change."""
    result = assignment.recompute(Lead.objects.filter(pk__in=list(lead_ids)))
    return {"leads": result.leads, "changed": result.changed}


@shared_task(ignore_result=True)
def recompute_all_personas():
    """Beat, nightly: the safety net for a recompute that could not be queued (broker down)."""
    result = assignment.recompute(Lead.objects.all())
    return {"leads": result.leads, "changed": result.changed}
