"""Celery entry points. Thin: each calls a plain function of the plugin."""

import smtplib

from celery import shared_task

from . import delivery, legal, optin, retention


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
def purge_unconfirmed_requests():
    """Beat, daily: delete unconfirmed requests and their answers after the window (D5)."""
    return retention.purge_unconfirmed_requests()
