"""Double opt-in: the request record, its signed token, sending the mail, and confirming.

- A submission creates one `OptInRequest` (the "DOI mail record") in the same transaction as
  the lead, the answers and the pending consent events (D1).
- The mail is sent by a Celery task queued on commit; if the broker was down, the sweeper
  sends it later. A failed send is retried with exponential backoff (never silently lost).
- The confirm link carries a signed, timestamped token tied to the request and a random
  per-request key (D3). GET shows a button; only POST confirms (D4).
"""

import logging
import secrets
import smtplib
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from django.core import signing
from django.db import models, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from kombu.exceptions import OperationalError as KombuOperationalError

from . import activity, conf, legal, suppression
from .consent import ConsentEvent, append_events
from .leads import LeadEvent, record_event
from .mailing import SentMail, record_sent

logger = logging.getLogger(__name__)

TOKEN_SALT = "inbound.optin.confirm"
MAIL_TEMPLATE = "inbound/mail/optin_confirm"
MAIL_TEMPLATE_VERSION = "optin-confirm/1"
LEGAL_RETRY_DELAY = timedelta(minutes=5)


def _new_key():
    return secrets.token_urlsafe(24)  # 192 bits


class OptInRequest(models.Model):
    """One request for a download, waiting for the visitor to confirm their address."""

    lead = models.ForeignKey("inbound.Lead", on_delete=models.CASCADE, related_name="optin_requests")
    page = models.ForeignKey("wagtailcore.Page", on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="+")
    submission = models.ForeignKey("inbound.GatedFormSubmission", on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    purposes = models.ManyToManyField("inbound.ConsentPurpose", blank=True, related_name="+")
    key = models.CharField(max_length=64, default=_new_key, editable=False)
    language = models.CharField(max_length=8, default="de")
    ip_truncated = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(gettext_lazy("requested"), default=timezone.now, db_index=True)
    expires_at = models.DateTimeField(gettext_lazy("link expires"))
    mail_sent_at = models.DateTimeField(gettext_lazy("mail sent"), null=True, blank=True)
    mail_template_version = models.CharField(max_length=32, blank=True)
    mail_attempts = models.PositiveIntegerField(default=0)
    mail_next_attempt_at = models.DateTimeField(null=True, blank=True)
    mail_last_error = models.CharField(max_length=255, blank=True)
    mail_failed_at = models.DateTimeField(gettext_lazy("sending gave up"), null=True, blank=True)
    confirmed_at = models.DateTimeField(gettext_lazy("confirmed"), null=True, blank=True)

    class Meta:
        verbose_name = gettext_lazy("opt-in request")
        verbose_name_plural = gettext_lazy("opt-in requests")
        indexes = [
            models.Index(fields=["mail_sent_at", "mail_failed_at", "created_at"],
                         name="inbound_optin_unsent"),
        ]

    def __str__(self):
        return f"opt-in request {self.pk}"

    @property
    def is_confirmed(self):
        return self.confirmed_at is not None

    def is_expired(self, now=None):
        return (now or timezone.now()) >= self.expires_at


# --- tokens -------------------------------------------------------------------------------

def make_token(optin):
    return signing.dumps([optin.pk, optin.key], salt=TOKEN_SALT, compress=False)


class TokenError(Exception):
    """The token is tampered with or belongs to no request."""


class TokenExpired(Exception):
    """The token is genuine but too old; `optin` says which request it was for."""

    def __init__(self, optin):
        super().__init__("expired")
        self.optin = optin


def resolve_token(token):
    """The `OptInRequest` a token belongs to. Raises TokenError or TokenExpired."""
    max_age = conf.get("INBOUND_OPTIN_LINK_MAX_AGE")
    try:
        payload = signing.loads(token, salt=TOKEN_SALT, max_age=max_age)
        expired = False
    except signing.SignatureExpired:
        payload = signing.loads(token, salt=TOKEN_SALT)  # genuine but old
        expired = True
    except signing.BadSignature as exc:
        raise TokenError("bad signature") from exc
    try:
        optin_id, key = payload
        optin = OptInRequest.objects.select_related("lead", "page").get(pk=int(optin_id))
    except (ValueError, TypeError, OptInRequest.DoesNotExist) as exc:
        raise TokenError("unknown request") from exc
    if not constant_time_compare(str(key), optin.key):
        raise TokenError("key mismatch")
    if (expired or optin.is_expired()) and not optin.is_confirmed:
        raise TokenExpired(optin)
    return optin


def confirm_url(optin, site):
    from .mailing import site_base_url

    return site_base_url(site) + reverse("inbound:confirm", args=[make_token(optin)])


# --- sending ------------------------------------------------------------------------------

class SendResult(StrEnum):
    SENT = "sent"
    ALREADY_DONE = "already_done"
    FAILED = "failed"
    GAVE_UP = "gave_up"
    NOT_DUE = "not_due"
    BLOCKED = "blocked"


def backoff(attempts):
    """Delay before the next attempt after `attempts` failures: 1, 2, 4, … minutes, capped."""
    return min(timedelta(minutes=2 ** max(attempts - 1, 0)), conf.get("INBOUND_MAIL_BACKOFF_CAP"))


def build_confirmation_mail(optin):
    from .mailing import build_transactional_mail

    site = optin.lead.site
    page = optin.page.specific if optin.page else None
    return build_transactional_mail(
        site=site,
        to=optin.lead.email,
        subject=(_("Please confirm your request: %(title)s") % {"title": page.title} if page
                 else _("Please confirm your consent")),
        template_base=MAIL_TEMPLATE,
        context={
            "page": page,
            "confirm_url": confirm_url(optin, site),
            "expires_at": optin.expires_at,
        },
        language=optin.language,
    )


def send_confirmation_mail(optin_id, now=None):
    """Send the confirmation mail of one request, at most once. Safe to call concurrently.

    The row is locked while sending, so the initial task and the sweeper never both send.
    A failure is recorded with the time of the next attempt; after the last attempt the
    request is marked as given up, which the admin shows.
    """
    now = now or timezone.now()
    with transaction.atomic():
        optin = (OptInRequest.objects.select_for_update(of=("self",))
                 .select_related("lead__site", "page").filter(pk=optin_id).first())
        if optin is None or optin.mail_sent_at or optin.confirmed_at or optin.mail_failed_at:
            return SendResult.ALREADY_DONE
        if optin.lead.synthetic:  # a made-up demo lead (`seed_demo`): never mailed
            return SendResult.BLOCKED
        if optin.mail_next_attempt_at and optin.mail_next_attempt_at > now:
            return SendResult.NOT_DUE
        missing = legal.missing_items(optin.lead.site)
        if missing:  # M5: no mail without the legal footer; it stays queued and shows in the admin
            optin.mail_last_error = (_("Legal notices incomplete: %s") % "; ".join(map(str, missing)))[:255]
            optin.mail_next_attempt_at = now + LEGAL_RETRY_DELAY
            optin.save(update_fields=["mail_last_error", "mail_next_attempt_at"])
            return SendResult.BLOCKED
        message = build_confirmation_mail(optin)
        try:
            message.send(fail_silently=False)
        except (smtplib.SMTPException, OSError) as exc:
            optin.mail_attempts += 1
            optin.mail_last_error = f"{type(exc).__name__}: {exc}"[:255]
            if optin.mail_attempts >= conf.get("INBOUND_MAIL_MAX_ATTEMPTS"):
                optin.mail_failed_at = now
                result = SendResult.GAVE_UP
            else:
                optin.mail_next_attempt_at = now + backoff(optin.mail_attempts)
                result = SendResult.FAILED
            optin.save(update_fields=["mail_attempts", "mail_last_error", "mail_failed_at",
                                      "mail_next_attempt_at"])
            logger.warning("Confirmation mail for opt-in request %s failed (attempt %s): %s",
                           optin.pk, optin.mail_attempts, type(exc).__name__)
            return result
        record_sent(optin.lead, SentMail.OPTIN, message, MAIL_TEMPLATE_VERSION)
        optin.mail_sent_at = timezone.now()
        optin.mail_attempts += 1
        optin.mail_template_version = MAIL_TEMPLATE_VERSION
        optin.save(update_fields=["mail_sent_at", "mail_attempts", "mail_template_version"])
        _append_for_purposes(optin, ConsentEvent.DOI_SENT, channel="mail",
                             mail_template_version=MAIL_TEMPLATE_VERSION,
                             occurred_at=optin.mail_sent_at)
    return SendResult.SENT


def due_unsent_requests(now=None):
    """Requests whose mail was never sent and is due: the sweeper's work list."""
    now = now or timezone.now()
    grace = conf.get("INBOUND_SWEEPER_GRACE")
    return (OptInRequest.objects
            .filter(mail_sent_at__isnull=True, mail_failed_at__isnull=True,
                    confirmed_at__isnull=True, expires_at__gt=now, created_at__lte=now - grace,
                    lead__synthetic=False)
            .filter(models.Q(mail_next_attempt_at__isnull=True)
                    | models.Q(mail_next_attempt_at__lte=now))
            .order_by("created_at").values_list("pk", flat=True))


def sweep_unsent(limit=500):
    """Send every due, never-sent confirmation mail. One failing request never stops the others."""
    counts = {}
    for optin_id in list(due_unsent_requests()[:limit]):
        try:
            result = str(send_confirmation_mail(optin_id))
        except Exception:  # e.g. a template or database error in one request
            logger.exception("Sweeper could not send the confirmation mail of request %s", optin_id)
            result = "error"
        counts[result] = counts.get(result, 0) + 1
    return counts


def enqueue_confirmation_mail(optin_id):
    """Queue the send. If the broker is unreachable, log it: the sweeper sends the mail later."""
    from .tasks import send_optin_mail

    try:
        send_optin_mail.delay(optin_id)
    except (KombuOperationalError, OSError) as exc:  # broker unreachable: nothing may be lost
        logger.warning("Could not queue confirmation mail for opt-in request %s (%s); the sweeper "
                       "will send it.", optin_id, type(exc).__name__)


# --- confirming ---------------------------------------------------------------------------

@dataclass
class ConfirmOutcome:
    optin: "OptInRequest"
    newly_confirmed: bool


def _append_for_purposes(optin, kind, **kwargs):
    purposes = list(optin.purposes.all())
    if not purposes:
        return []
    versions = {event.purpose_id: event.text_version for event in
                optin.consent_events.filter(kind=ConsentEvent.REQUESTED).select_related("text_version")}
    page = optin.page.specific if optin.page else None
    return append_events(
        optin.lead, kind, [(p, versions[p.pk]) for p in purposes if p.pk in versions],
        opt_in=optin, source_page=page, asset=getattr(page, "asset", None),
        **kwargs,
    )


def confirm(optin, ip_truncated=""):
    """Confirm a request: consent events confirmed, lead confirmed, events recorded.

    Idempotent: a second call changes nothing and says so.
    """
    with transaction.atomic():
        optin = (OptInRequest.objects.select_for_update(of=("self",))
                 .select_related("lead", "page").get(pk=optin.pk))
        if optin.confirmed_at:
            return ConfirmOutcome(optin, newly_confirmed=False)
        now = timezone.now()
        optin.confirmed_at = now
        optin.save(update_fields=["confirmed_at"])
        lead = optin.lead
        if lead.confirmed_at is None:
            lead.confirmed_at = now
            lead.save(update_fields=["confirmed_at"])
        _append_for_purposes(optin, ConsentEvent.CONFIRMED, channel="doi-link",
                             ip_truncated=ip_truncated, occurred_at=now)
        record_event(lead, LeadEvent.OPTIN_CONFIRMED, page=optin.page, optin=optin.pk)
        suppression.lift(lead.site_id, lead.email)  # a fresh, confirmed opt-in by the person
        activity.announce([lead.pk], activity.CONFIRMATION)
    return ConfirmOutcome(optin, newly_confirmed=True)


def enqueue_safely(task, *args):
    """Queue a task after commit; if the broker is unreachable, log it instead of failing."""
    try:
        task.delay(*args)
    except (KombuOperationalError, OSError) as exc:
        logger.warning("Could not queue %s (%s)", task.name, type(exc).__name__)
