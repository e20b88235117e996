"""Retention (R4, D5, P4): deleting what may no longer be kept, one plain function per category.

Each function takes `now` (for tests and catch-up runs) and returns counts without personal
data. `run_all` runs every job in its own `RetentionRun` row, which the admin lists; the
daily beat task `inbound.tasks.run_retention` calls it.

Deleting a lead here is retention, not an erasure request (Art. 17): the address is not put on
the suppression list, and the audit log gets an entry labelled with the lead's id only.
"""

import logging

from django.db import IntegrityError, models, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from wagtail.log_actions import log

from . import conf
from .consent import PENDING, ConsentEvent, lead_consent_states
from .leads import Lead, LeadEvent
from .mailing import SentMail
from .optin import OptInRequest, _append_for_purposes
from .pages import GatedFormSubmission

logger = logging.getLogger(__name__)


class RetentionRun(models.Model):
    """One run of a retention job, with what it deleted (R4: each run is logged)."""

    job = models.CharField(_("job"), max_length=64)
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    counts = models.JSONField(_("counts"), default=dict)

    class Meta:
        verbose_name = _("retention run")
        verbose_name_plural = _("retention runs")
        ordering = ["-started_at"]

    def __str__(self):
        return f"{self.job} {self.started_at:%Y-%m-%d %H:%M}"


def purge_unconfirmed_requests(now=None):
    """Delete unconfirmed requests older than the window, with their answers (D5).

    A lead that never confirmed anything is deleted entirely. A confirmed lead keeps its
    confirmed data; its stale request gets an "expired" ledger entry and is deleted.
    """
    now = now or timezone.now()
    cutoff = now - conf.get("INBOUND_UNCONFIRMED_RETENTION")
    counts = {"requests": 0, "submissions": 0, "leads": 0}
    stale = OptInRequest.objects.filter(confirmed_at__isnull=True, created_at__lt=cutoff)
    for optin_id in _ids_in_batches(stale):
        with transaction.atomic():
            optin = (OptInRequest.objects.select_for_update(of=("self",)).select_related("lead", "page")
                     .filter(pk=optin_id, confirmed_at__isnull=True).first())
            if optin is None:
                continue
            lead = optin.lead
            others = lead.optin_requests.exclude(pk=optin.pk)
            if lead.confirmed_at is None and not others.exists():
                counts["submissions"] += lead.submissions.count()
                lead.delete()
                counts["leads"] += 1
                counts["requests"] += 1
                continue
            _append_for_purposes(optin, ConsentEvent.EXPIRED, channel="retention", occurred_at=now)
            if optin.submission_id:
                optin.submission.delete()
                counts["submissions"] += 1
            optin.delete()
            counts["requests"] += 1
    logger.info("Retention of unconfirmed requests: %s", counts)
    return counts


# --- helpers -----------------------------------------------------------------------------------

BATCH_SIZE = 500


def _ids_in_batches(queryset, batch_size=BATCH_SIZE):
    """The primary keys of a queryset in ascending batches, so a large backlog is worked off in
    one run without holding every id in memory. Rows handled meanwhile simply drop out."""
    last = 0
    while True:
        batch = list(queryset.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not batch:
            return
        yield from batch
        last = batch[-1]


# --- raw events --------------------------------------------------------------------------------

def purge_raw_events(now=None):
    """Delete raw behaviour events (`LeadEvent`) older than INBOUND_EVENT_RETENTION.

    Before an event goes, its time is kept as the lead's `last_activity_at` (only the time, no
    content), so deleting old events never makes a lead look inactive earlier than it is.
    """
    now = now or timezone.now()
    cutoff = now - conf.get("INBOUND_EVENT_RETENTION")
    counts = {"events": 0, "leads_touched": 0}
    old = LeadEvent.objects.filter(occurred_at__lt=cutoff)
    latest_per_lead = (old.filter(lead__isnull=False).order_by().values("lead_id")
                       .annotate(latest=models.Max("occurred_at")))
    for row in latest_per_lead.iterator():
        counts["leads_touched"] += Lead.objects.filter(pk=row["lead_id"]).filter(
            Q(last_activity_at__isnull=True) | Q(last_activity_at__lt=row["latest"])
        ).update(last_activity_at=row["latest"])
    while True:
        batch = list(old.order_by("pk").values_list("pk", flat=True)[:5000])
        if not batch:
            break
        deleted, _by_model = LeadEvent.objects.filter(pk__in=batch).delete()
        counts["events"] += deleted
    logger.info("Retention of raw events: %s", counts)
    return counts


# --- truncated IP addresses (P4) ----------------------------------------------------------------

def clear_ip_addresses(now=None):
    """Clear truncated IPs older than INBOUND_IP_RETENTION in the ledger and on opt-in requests.

    A queryset update on purpose: the ledger is otherwise append-only, and its hash chain
    covers `ip_digest`, not the IP, so `consent.verify_chain` still passes afterwards.
    """
    now = now or timezone.now()
    cutoff = now - conf.get("INBOUND_IP_RETENTION")
    counts = {
        "consent_events": ConsentEvent.objects.filter(occurred_at__lt=cutoff).exclude(ip_truncated="")
        .update(ip_truncated=""),
        "optin_requests": OptInRequest.objects.filter(created_at__lt=cutoff).exclude(ip_truncated="")
        .update(ip_truncated=""),
    }
    logger.info("Retention of IP addresses: %s", counts)
    return counts


# --- inactive leads and consent proof after withdrawal ------------------------------------------

RETENTION_DELETE_ACTION = "inbound.lead.retention_delete"


def inactive_leads(cutoff, queryset=None):
    """Leads with no sign of activity since `cutoff`.

    Activity is anything stored with a time: the lead's creation, its `last_activity_at`, a
    submission, an opt-in request, a raw event, a mail sent or a consent event (a withdrawal
    counts too). Whether a consent is still active is checked per lead, see `_deletable`.
    """
    queryset = Lead.objects.all() if queryset is None else queryset
    lead = OuterRef("pk")
    recent = [
        GatedFormSubmission.objects.filter(lead=lead, submit_time__gte=cutoff),
        OptInRequest.objects.filter(lead=lead, created_at__gte=cutoff),
        LeadEvent.objects.filter(lead=lead, occurred_at__gte=cutoff),
        SentMail.objects.filter(lead=lead, sent_at__gte=cutoff),
        ConsentEvent.objects.filter(lead=lead, occurred_at__gte=cutoff),
    ]
    queryset = queryset.filter(created_at__lt=cutoff).filter(
        Q(last_activity_at__isnull=True) | Q(last_activity_at__lt=cutoff))
    for subquery in recent:
        queryset = queryset.exclude(Exists(subquery))
    return queryset


def has_active_consent(lead):
    """Any purpose confirmed or still pending: the lead's consent is the reason to keep it."""
    return any(state in (ConsentEvent.CONFIRMED, PENDING) for state in lead_consent_states(lead).values())


def holds_consent_proof(lead):
    """The ledger shows a consent that was confirmed at some point (now withdrawn, if inactive)."""
    return ConsentEvent.objects.filter(lead=lead, kind=ConsentEvent.CONFIRMED).exists()


def _delete_for_retention(lead, job):
    """Delete one lead with everything that cascades from it; audit entry without personal data."""
    counts = {
        "submissions": lead.submissions.count(),
        "optin_requests": lead.optin_requests.count(),
        "consent_events": lead.consent_events.count(),
        "events": lead.events.count(),
        "mails": lead.sent_mails.count(),
    }
    log(lead, RETENTION_DELETE_ACTION, user=None, title=f"Lead #{lead.pk}", data={"job": job, **counts})
    lead.delete()
    return counts


def _purge_leads(job, candidates, activity_cutoff, wanted):
    """Delete each candidate that, under its row lock, is still inactive and `wanted(lead)`.

    The lock is the one submission, confirmation, withdrawal and sending take, so a lead that
    becomes active while the job runs is re-checked after that transaction and kept.
    """
    counts = {"leads": 0, "submissions": 0, "optin_requests": 0, "consent_events": 0, "events": 0,
              "mails": 0, "skipped": 0}
    for lead_id in _ids_in_batches(candidates):
        try:
            with transaction.atomic():
                lead = Lead.objects.select_for_update(of=("self",)).filter(pk=lead_id).first()
                still_inactive = inactive_leads(activity_cutoff, Lead.objects.filter(pk=lead_id)).exists()
                if lead is None or not still_inactive:
                    continue
                if has_active_consent(lead) or not wanted(lead):
                    continue
                for name, number in _delete_for_retention(lead, job).items():
                    counts[name] += number
                counts["leads"] += 1
        except IntegrityError:
            # a row referring to the lead was written concurrently: keep the lead, try tomorrow
            logger.warning("Retention job %s kept lead #%s: concurrent write", job, lead_id)
            counts["skipped"] += 1
    return counts


def purge_inactive_leads(now=None):
    """Delete leads inactive for INBOUND_INACTIVE_LEAD_RETENTION that hold no consent proof.

    These are leads that never confirmed a consent (e.g. download only) and have no pending
    one. Leads whose ledger shows a confirmed consent are kept for the proof period and left
    to `purge_withdrawn_consent_proof`; leads with an active consent are never deleted here.
    """
    now = now or timezone.now()
    cutoff = now - conf.get("INBOUND_INACTIVE_LEAD_RETENTION")
    counts = _purge_leads("inactive_leads", inactive_leads(cutoff), cutoff,
                          wanted=lambda lead: not holds_consent_proof(lead))
    logger.info("Retention of inactive leads: %s", counts)
    return counts


def purge_withdrawn_consent_proof(now=None):
    """Delete leads, with their consent proof, once every consent ended long enough ago.

    A lead qualifies when no consent is active (all withdrawn, or pending ones expired), its
    last consent event is older than INBOUND_CONSENT_PROOF_RETENTION, and it is inactive for
    INBOUND_INACTIVE_LEAD_RETENTION too (so the longer of the two periods applies).
    """
    now = now or timezone.now()
    activity_cutoff = now - conf.get("INBOUND_INACTIVE_LEAD_RETENTION")
    proof_cutoff = now - conf.get("INBOUND_CONSENT_PROOF_RETENTION")
    confirmed = ConsentEvent.objects.filter(lead=OuterRef("pk"), kind=ConsentEvent.CONFIRMED)
    recent_consent = ConsentEvent.objects.filter(lead=OuterRef("pk"), occurred_at__gte=proof_cutoff)
    candidates = inactive_leads(activity_cutoff).filter(Exists(confirmed)).exclude(Exists(recent_consent))

    def wanted(lead):
        return (holds_consent_proof(lead)
                and not ConsentEvent.objects.filter(lead=lead, occurred_at__gte=proof_cutoff).exists())

    counts = _purge_leads("consent_proof", candidates, activity_cutoff, wanted)
    logger.info("Retention of consent proof after withdrawal: %s", counts)
    return counts


# --- running the jobs --------------------------------------------------------------------------

# Job name → (function, label). The order matters: raw events hand their times to
# `last_activity_at` before the lead jobs look at activity.
JOBS = {
    "unconfirmed_requests": (purge_unconfirmed_requests, _("Unconfirmed requests")),
    "raw_events": (purge_raw_events, _("Raw events")),
    "ip_addresses": (clear_ip_addresses, _("Truncated IP addresses")),
    "inactive_leads": (purge_inactive_leads, _("Inactive leads")),
    "consent_proof": (purge_withdrawn_consent_proof, _("Consent proof after withdrawal")),
}


def job_label(job):
    entry = JOBS.get(job)
    return entry[1] if entry else job


def run_job(job, now=None):
    """Run one job in its own logged `RetentionRun`. A failure is logged and recorded, not raised."""
    function, _label = JOBS[job]
    run = RetentionRun.objects.create(job=job, started_at=timezone.now())
    try:
        counts = function(now=now)
    except Exception as exc:
        logger.exception("Retention job %s failed", job)
        counts = {"error": type(exc).__name__}  # the class only: a message might hold personal data
    run.counts = counts
    run.finished_at = timezone.now()
    run.save(update_fields=["counts", "finished_at"])
    return run


def run_all(now=None):
    """Run every retention job (R4) with the same `now`; returns {job: counts}."""
    now = now or timezone.now()
    return {job: run_job(job, now=now).counts for job in JOBS}
