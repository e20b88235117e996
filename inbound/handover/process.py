"""Processing hand-overs: nurture exit, the sales mail, the webhook delivery (N4, S4).

`engine.recompute` writes a `HandOver` for every move to MQL in the same transaction and queues
`tasks.process_hand_overs` after the commit; beat runs the same task every minute, so a
hand-over whose task could not be queued (broker down) or whose mail failed is caught up.

One run (`process_due`) works like the nurture dispatcher:

1. claims a batch of unprocessed, due hand-overs: `SELECT … FOR UPDATE SKIP LOCKED` on
   PostgreSQL and a lease (`claimed_until`), so workers running at the same time take
   different rows and the batch of a crashed worker is free again once its lease runs out;
2. handles each hand-over in its own transaction, which locks the lead's row (the lock a
   restriction, objection or withdrawal takes) and then the hand-over's, and re-checks that it
   is still unprocessed; then
   - a lead whose processing is restricted or objected to by now is not handed over: no mail,
     no webhook; the hand-over is marked processed with a note (R3);
   - the lead leaves every track with "leave the track on hand-over" ("handed over to sales");
   - the site's sales address (scoring settings) gets the summary (`summary.summarize`),
     logged as a `SentMail` of kind "sales" on the lead (its timeline and data export show
     that sales was told);
   - a `WebhookDelivery` is created if the site has a webhook (`webhooks` sends it);
   - the hand-over is marked processed.
   The commit follows the SMTP server's "250 OK"; a failed send rolls everything back and the
   hand-over is tried again with backoff (1, 2, 4 … minutes, at most an hour, never given up:
   a hand-over must not be lost). A processed hand-over is never mailed again.

As with nurture mail, the one gap SMTP leaves is a crash between the server's "250 OK" and the
commit: that mail would go out twice.
"""

import logging
import smtplib
from dataclasses import dataclass, fields
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from .. import leases
from ..mailing import SentMail, build_transactional_mail, record_sent
from ..marketing import lock_lead
from ..nurture import enrolment
from ..scoring.models import ScoringSettings
from .models import HandOver, WebhookDelivery
from .summary import as_payload, summarize

logger = logging.getLogger(__name__)

MAIL_TEMPLATE = "inbound/mail/handover"
TEMPLATE_VERSION = "handover/1"
LANGUAGE = "de"
BATCH_SIZE = 50
LEASE = timedelta(minutes=5)
RETRY_BASE = 60  # seconds before the first retry of a failed mail; doubles per attempt
RETRY_CAP = 60 * 60
STOPPED_NOTE = "processing restricted or objected to: not handed over"
SYNTHETIC_NOTE = "synthetic demo lead: not handed over"


@dataclass
class ProcessResult:
    processed: int = 0
    mailed: int = 0
    webhooks: int = 0
    stopped: int = 0
    retried: int = 0
    skipped: int = 0
    batches: int = 0

    def add(self, outcome):
        for name in outcome:
            setattr(self, name, getattr(self, name) + 1)

    def as_dict(self):
        return {f.name: getattr(self, f.name) for f in fields(self)}


def retry_delay(attempts):
    """Backoff after the `attempts`-th failure: 1, 2, 4 … minutes, at most an hour."""
    return timedelta(seconds=min(RETRY_BASE * 2 ** max(attempts - 1, 0), RETRY_CAP))


def claim(now, batch_size=BATCH_SIZE):
    """Ids of up to `batch_size` unprocessed, due hand-overs, now leased to this worker."""
    due = (HandOver.objects.filter(processed_at__isnull=True)
           .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
           .order_by("created_at", "pk"))
    return leases.claim_due(due, now, batch_size, LEASE)


def process_due(now=None, batch_size=BATCH_SIZE, max_batches=None, mail_connection=None):
    """One run; returns a `ProcessResult`. `now` is injectable for tests."""
    clock = (lambda: now) if now is not None else timezone.now
    result = ProcessResult()
    while max_batches is None or result.batches < max_batches:
        ids = claim(clock(), batch_size)
        if not ids:
            break
        result.batches += 1
        for hand_over_id in ids:
            result.add(process_one(hand_over_id, now=clock(), mail_connection=mail_connection))
    return result


def process_one(hand_over_id, *, now=None, mail_connection=None):
    """Handle one hand-over; returns the names of the `ProcessResult` counters to bump."""
    now = now or timezone.now()
    try:
        with transaction.atomic():
            return _process(hand_over_id, now, mail_connection)
    except (smtplib.SMTPException, OSError) as exc:
        _retry_later(hand_over_id, now, exc)
        return ("retried",)


def _process(hand_over_id, now, mail_connection):
    lead_id = HandOver.objects.filter(pk=hand_over_id).values_list("lead_id", flat=True).first()
    lead = lock_lead(lead_id) if lead_id is not None else None
    if lead is None:
        return ("skipped",)  # erased meanwhile (the hand-over went with it)
    hand_over = (HandOver.objects.select_for_update().filter(pk=hand_over_id, processed_at__isnull=True)
                 .first())
    if hand_over is None:
        return ("skipped",)  # processed meanwhile by another worker
    if lead.synthetic or lead.processing_stopped:
        _mark_processed(hand_over, now, SYNTHETIC_NOTE if lead.synthetic else STOPPED_NOTE)
        logger.info("hand-over %s of lead %s: not handed over (stopped)", hand_over.pk, lead.pk)
        return ("processed", "stopped")
    enrolment.end_on_handover([lead.pk], now)
    site_settings = ScoringSettings.for_site(lead.site)
    outcome = ["processed"]
    summary = None
    if site_settings.sales_email and hand_over.mail_sent_at is None:
        summary = summarize(lead)
        message = build_sales_mail(summary, site=lead.site, to=site_settings.sales_email)
        if mail_connection is not None:
            message.connection = mail_connection
        message.send(fail_silently=False)
        record_sent(lead, SentMail.SALES, message, TEMPLATE_VERSION)
        hand_over.mail_sent_at = timezone.now()
        hand_over.mail_message_id = message.extra_headers.get("Message-ID", "")[:255]
        outcome.append("mailed")
    if site_settings.webhook_url:
        summary = summary or summarize(lead)
        delivery = WebhookDelivery(hand_over=hand_over, site_id=lead.site_id, url=site_settings.webhook_url,
                                   payload=as_payload(summary, hand_over=hand_over), next_attempt_at=now)
        if not site_settings.webhook_secret:
            delivery.status, delivery.last_error = WebhookDelivery.FAILED, "no webhook secret configured"
        delivery.save()
        outcome.append("webhooks")
        if delivery.status == WebhookDelivery.PENDING:
            transaction.on_commit(_queue_webhooks)
    _mark_processed(hand_over, now, "")
    logger.info("hand-over %s of lead %s processed", hand_over.pk, lead.pk)
    return tuple(outcome)


def _queue_webhooks():
    from ..optin import enqueue_safely
    from ..tasks import deliver_webhooks

    enqueue_safely(deliver_webhooks)


def _mark_processed(hand_over, now, note):
    hand_over.processed_at = now
    hand_over.claimed_until = None
    hand_over.next_attempt_at = None
    hand_over.last_error = note
    hand_over.save(update_fields=["processed_at", "claimed_until", "next_attempt_at", "last_error",
                                  "mail_sent_at", "mail_message_id"])


def _error_text(exc):
    """The failure without personal data: the exception's class and SMTP code, if any."""
    code = getattr(exc, "smtp_code", None) or getattr(exc, "errno", None)
    return f"{type(exc).__name__}{f' ({code})' if code else ''}"


def _retry_later(hand_over_id, now, exc):
    hand_over = HandOver.objects.filter(pk=hand_over_id).only("attempts").first()
    if hand_over is None:
        return
    attempts = hand_over.attempts + 1
    HandOver.objects.filter(pk=hand_over_id, processed_at__isnull=True).update(
        attempts=attempts, next_attempt_at=now + retry_delay(attempts), claimed_until=None,
        last_error=_error_text(exc))
    logger.warning("hand-over %s: sales mail failed (%s), attempt %s", hand_over_id, _error_text(exc),
                   attempts)


def build_sales_mail(summary, *, site, to, language=LANGUAGE):
    """The mail to the sales address: text and HTML with the legal footer, German by default."""
    with translation.override(language):
        subject = _("New MQL: %(email)s (score %(score)s)") % {"email": summary.email, "score": summary.total}
    return build_transactional_mail(site=site, to=to, subject=subject, template_base=MAIL_TEMPLATE,
                                    context={"summary": summary}, language=language)
