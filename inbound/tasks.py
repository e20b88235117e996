"""Celery entry points. Thin: each calls a plain function of the plugin."""

import logging
import smtplib

from celery import shared_task
from django.db import DatabaseError
from kombu.exceptions import OperationalError as KombuOperationalError

from . import delivery, legal, optin, retention, self_service
from .leads import Lead
from .scoring import engine

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True, acks_late=True)
def send_optin_mail(optin_id):
    """Send one confirmation mail; failures are recorded and retried by the sweeper."""
    return str(optin.send_confirmation_mail(optin_id))


@shared_task(ignore_result=True)
def sweep_unsent_optin_mails():
    """Beat, every minute: send every confirmation mail that is due and was never sent."""
    return optin.sweep_unsent()


@shared_task(bind=True, ignore_result=True, acks_late=True, max_retries=8)
def send_delivery_mail(self, optin_id):
    try:
        delivery.send_delivery_mail(optin_id)
    except (smtplib.SMTPException, OSError, legal.LegalSetupIncomplete) as exc:
        raise self.retry(exc=exc, countdown=min(60 * 2 ** self.request.retries, 3600)) from exc


@shared_task(ignore_result=True)
def dispatch_nurture():
    """Beat, every minute: enrol eligible leads and send every due nurture step (exactly once),
    with up to INBOUND_NURTURE_DISPATCHERS dispatchers where more than one batch is due."""
    from .nurture.dispatch import dispatch_due

    result = dispatch_due(fan_out=_start_nurture_dispatchers)
    return {"enrolled": result.enrolled, "sent": result.sent, "failed": result.failed,
            "helpers": result.helpers}


@shared_task(ignore_result=True)
def dispatch_nurture_more():
    """A further dispatcher started by `dispatch_nurture` for a backlog: sends until nothing is due."""
    from .nurture.dispatch import dispatch_due

    result = dispatch_due(enrol=False)
    return {"sent": result.sent, "failed": result.failed}


def _start_nurture_dispatchers(count):
    """Queue `count` further dispatchers; with the broker down, the beat run goes on alone."""
    started = 0
    for _ in range(count):
        try:
            dispatch_nurture_more.delay()
        except (KombuOperationalError, OSError):  # broker unreachable
            logger.warning("Could not queue a further nurture dispatcher; this run goes on alone.")
            break
        started += 1
    return started


@shared_task(ignore_result=True)
def run_retention():
    """Beat, daily: every retention job (R4), each logged as a `RetentionRun`."""
    return retention.run_all()


@shared_task(ignore_result=True)
def purge_unconfirmed_requests():
    """Only the D5 job, logged like the others (for manual runs; beat uses `run_retention`)."""
    return retention.run_job("unconfirmed_requests").counts


@shared_task(ignore_result=True, acks_late=True)
def mail_preference_link(site_id, email, language="de"):
    """Queued for every valid "manage my data" request, known address or not, so the answer
    takes the same time either way (D8)."""
    return self_service.mail_preference_link(site_id, email, language)


@shared_task(bind=True, ignore_result=True, acks_late=True, max_retries=8)
def mail_erasure_link(self, lead_id, language="de"):
    try:
        return self_service.mail_erasure_link(lead_id, language)
    except (smtplib.SMTPException, OSError) as exc:
        raise self.retry(exc=exc, countdown=min(60 * 2 ** self.request.retries, 3600)) from exc


# --- lead scoring (issue 9) --------------------------------------------------------------------

@shared_task(ignore_result=True, acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=2,
             retry_backoff_max=300, max_retries=6)
def score_leads(lead_ids):
    """After any activity of the leads: their scores and stages, within seconds."""
    result = engine.recompute(Lead.objects.filter(pk__in=list(lead_ids)))
    return {"leads": result.leads, "changes": result.changes}


@shared_task(ignore_result=True, acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=2,
             retry_backoff_max=300, max_retries=6)
def recompute_site_scores(site_id):
    """After a change of the site's scoring rules or settings."""
    result = engine.recompute(Lead.objects.filter(site_id=site_id))
    return {"leads": result.leads, "changes": result.changes}


@shared_task(ignore_result=True)
def recompute_all_scores():
    """Beat, nightly: decay moves on with the time, and any update that could not be queued
    (broker down) is caught up."""
    result = engine.recompute(Lead.objects.all())
    return {"leads": result.leads, "changes": result.changes}


# --- hand-over to sales (issue 9) ------------------------------------------------------------

@shared_task(ignore_result=True, acks_late=True)
def process_hand_overs():
    """After a move to MQL, and beat every minute (catch-up): nurture exit, sales mail, webhook."""
    from .handover.process import process_due

    return process_due().as_dict()


@shared_task(ignore_result=True, acks_late=True)
def deliver_webhooks():
    """After a hand-over, and beat every minute: due webhook deliveries, signed, with backoff."""
    from .handover.webhooks import deliver_due

    return deliver_due().as_dict()
