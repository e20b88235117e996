"""Data-subject rights as plain functions: export (R1), erasure (R2), restriction and objection (R3).

The admin, the self-service pages and beat tasks all call these. The export format is
versioned and described in docs/export-format.md.
"""

from django.db import transaction
from django.db.models import Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone
from wagtail import hooks
from wagtail.contrib.forms.models import FormSubmission
from wagtail.log_actions import log

from . import activity, proof
from .consent import withdraw
from .leads import Lead
from .suppression import suppress

EXPORT_FORMAT = "inbound.lead-export/1"

ERASE_ACTION = "inbound.lead.erase"
RESTRICT_ACTION = "inbound.lead.restrict"
OBJECT_ACTION = "inbound.lead.object"
EXPORT_SELF_ACTION = "inbound.lead.export_self"


def other_form_submissions(lead):
    """Wagtail form submissions of the lead's site (outside gated pages) that carry the address."""
    root = lead.site.root_page
    address = lead.email.lower()
    # The database narrows the rows by the local part (always ASCII, so it reads the same in
    # the stored JSON text); the exact comparison below decides. This keeps the preference
    # center from loading every submission of the site.
    local_part = address.rsplit("@", 1)[0]
    candidates = (FormSubmission.objects.filter(page__path__startswith=root.path)
                  .annotate(form_text=Cast("form_data", TextField()))
                  .filter(form_text__icontains=local_part)
                  .select_related("page").order_by("submit_time"))
    return [submission for submission in candidates.iterator()
            if any(isinstance(value, str) and value.strip().lower() == address
                   for value in submission.form_data.values())]


EXPORT_HOOK = "inbound_lead_export"


def export_lead(lead, now=None):
    """R1: everything stored about one lead, as a JSON-ready dict.

    Apps that store more about a lead (personas, scoring) add their part with a Wagtail hook
    `inbound_lead_export`: a function of the lead returning `{key: JSON-ready value}` for keys
    of the export format (e.g. `persona_history`).
    """
    now = now or timezone.now()
    consent_proof = proof.build_proof(lead, now=now)
    export = {
        "format": EXPORT_FORMAT,
        "generated_at": proof.iso(now),
        "profile": {
            "email": lead.email, "site": lead.site.hostname, "created_at": proof.iso(lead.created_at),
            "confirmed_at": proof.iso(lead.confirmed_at), "restricted_at": proof.iso(lead.restricted_at),
            "objected_at": proof.iso(lead.objected_at), "last_activity_at": proof.iso(lead.last_activity_at),
        },
        "answers": [
            {"page": submission.page.title, "submitted_at": proof.iso(submission.submit_time),
             "answers": submission.form_data}
            for submission in lead.submissions.select_related("page").order_by("submit_time")
        ] + [
            {"page": submission.page.title, "submitted_at": proof.iso(submission.submit_time),
             "answers": submission.form_data}
            for submission in other_form_submissions(lead)
        ],
        "consents": consent_proof["consents"],
        "consent_ledger": consent_proof["events"],
        "optin_requests": consent_proof["optin_requests"],
        "events": [
            {"kind": event.kind, "occurred_at": proof.iso(event.occurred_at),
             "page": event.page.title if event.page else None, "data": event.data}
            for event in lead.events.select_related("page").order_by("occurred_at")
        ],
        "mails_sent": [
            {"kind": mail.kind, "subject": mail.subject, "sent_at": proof.iso(mail.sent_at),
             "message_id": mail.message_id}
            for mail in lead.sent_mails.order_by("sent_at")
        ],
        "scores": [],
        "persona_history": [],
    }
    for extend in hooks.get_hooks(EXPORT_HOOK):
        export.update(extend(lead) or {})
    return export


def erase_lead(lead, *, user=None, channel="admin"):
    """R2: remove the lead everywhere; only a keyed hash stays on the suppression list.

    Deletes the lead with its answers, consent ledger, opt-in requests, events and mail log,
    plus Wagtail form submissions of the site that carry the address. Writes an audit entry
    without personal data. Returns counts for the caller's message.
    """
    with transaction.atomic():
        lead = Lead.objects.select_for_update(of=("self",)).select_related("site").get(pk=lead.pk)
        other_submissions = other_form_submissions(lead)
        counts = {
            "answers": lead.submissions.count() + len(other_submissions),
            "consent_events": lead.consent_events.count(),
            "events": lead.events.count(),
            "mails": lead.sent_mails.count(),
        }
        suppress(lead.site, lead.email)
        log(lead, ERASE_ACTION, user=user, title=f"Lead #{lead.pk}", data={"channel": channel, **counts})
        for submission in other_submissions:
            submission.delete()
        lead.delete()
    return counts


def set_restriction(lead, restricted, *, user=None, channel="admin"):
    """R3 (Art. 18): while restricted, nothing but storage happens."""
    with transaction.atomic():
        lead = Lead.objects.select_for_update(of=("self",)).get(pk=lead.pk)
        lead.restricted_at = timezone.now() if restricted else None
        lead.save(update_fields=["restricted_at"])
        activity.announce([lead.pk], activity.PROCESSING)
        log(lead, RESTRICT_ACTION, user=user, title=f"Lead #{lead.pk}",
            data={"restricted": restricted, "channel": channel})
    return lead


def objection_purposes(lead):
    """The purposes an objection ends: marketing mail and tracking (profiling, scoring)."""
    from .consent import ConsentPurpose

    return list(ConsentPurpose.objects.filter(site_id=lead.site_id).filter(
        Q(is_marketing=True) | Q(channel=ConsentPurpose.TRACKING)))


def set_objection(lead, objected, *, user=None, channel="admin"):
    """R3 (Art. 21): an objection stops processing and withdraws marketing consent."""
    with transaction.atomic():
        lead = Lead.objects.select_for_update(of=("self",)).get(pk=lead.pk)
        lead.objected_at = timezone.now() if objected else None
        lead.save(update_fields=["objected_at"])
        if objected:  # Art. 21(2), (3): direct marketing and the profiling related to it
            withdraw(lead, objection_purposes(lead), channel=f"objection-{channel}")
        activity.announce([lead.pk], activity.PROCESSING)
        log(lead, OBJECT_ACTION, user=user, title=f"Lead #{lead.pk}",
            data={"objected": objected, "channel": channel})
    return lead
