"""Capturing a valid submission of a gated form (data-flow step 1, "Submit").

In one transaction: find or create the lead, store the answers, append a pending consent
event per ticked purpose, and record the confirmation mail to send. The send is queued on
commit. Repeated submissions are folded into one mail (F7) and never downgrade a confirmed
consent (D6).
"""

import logging
from dataclasses import dataclass
from functools import partial

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import activity, conf
from .consent import ConsentEvent, append_events, current_versions
from .leads import Lead
from .optin import OptInRequest, enqueue_confirmation_mail

logger = logging.getLogger(__name__)


@dataclass
class CaptureOutcome:
    lead: Lead | None
    submission: object | None
    optin: OptInRequest | None
    mail_queued: bool


def find_or_create_lead(site, email):
    """One lead per site and normalised address, safe against two concurrent first submissions."""
    lead = Lead.objects.select_for_update().filter(site=site, email=email).first()
    if lead is not None:
        return lead
    try:
        with transaction.atomic():
            return Lead.objects.create(site=site, email=email)
    except IntegrityError:
        return Lead.objects.select_for_update().get(site=site, email=email)


def recent_optin_for(lead, page, now):
    window_start = now - conf.get("INBOUND_OPTIN_DEDUP_WINDOW")
    return (OptInRequest.objects.filter(lead=lead, page=page, created_at__gte=window_start,
                                        confirmed_at__isnull=True, mail_failed_at__isnull=True)
            .order_by("-created_at").first())


def mails_in_window(lead, now):
    window_start = now - conf.get("INBOUND_OPTIN_DEDUP_WINDOW")
    return OptInRequest.objects.filter(lead=lead, created_at__gte=window_start).count()


def text_versions_for(form, purposes, language):
    """The current text versions of the ticked purposes: those the form's labels were built
    from where the form has them in the client's language, else looked up in one query."""
    language = (language or "de")[:2]
    known = getattr(form, "text_versions", None)
    if known is not None and getattr(form, "text_language", None) == language:
        if all(p.pk in known for p in purposes):
            return known
    return current_versions(purposes, language)


def capture_submission(page, form, client, site=None):
    """Store a valid submission and start the double opt-in. See the module docstring.

    `site` is the page's site where the caller has it already (else `page.get_site()`).
    """
    if form.is_bot:
        logger.info("Honeypot submission on page %s discarded", page.pk)
        return CaptureOutcome(None, None, None, mail_queued=False)
    site = site or page.get_site()
    email = form.cleaned_data["email"]
    purposes = form.ticked_purposes()
    versions = text_versions_for(form, purposes, client.language)
    now = timezone.now()
    with transaction.atomic():
        lead = find_or_create_lead(site, email)
        submission = page.get_submission_class().objects.create(
            page=page, lead=lead,
            form_data={"email": email, **form.answers(), "consents": [p.key for p in purposes]},
        )
        optin = recent_optin_for(lead, page, now)
        new_mail = optin is None
        if new_mail and mails_in_window(lead, now) >= conf.get("INBOUND_OPTIN_MAX_MAILS_PER_ADDRESS"):
            logger.info("Mail cap reached for a lead on site %s; no further confirmation mail",
                        site.pk)
            return CaptureOutcome(lead, submission, None, mail_queued=False)
        if new_mail:
            optin = OptInRequest.objects.create(
                lead=lead, page=page, submission=submission, language=client.language,
                ip_truncated=client.ip_truncated,
                expires_at=now + conf.get("INBOUND_OPTIN_LINK_MAX_AGE"),
            )
        # A request created just now has no purposes yet.
        already = set() if new_mail else set(optin.purposes.values_list("pk", flat=True))
        added = [p for p in purposes if p.pk not in already]
        if added:
            optin.purposes.add(*added)
            append_events(
                lead, ConsentEvent.REQUESTED, [(p, versions[p.pk]) for p in added],
                channel="web-form", opt_in=optin, source_page=page, asset=page.asset,
                ip_truncated=client.ip_truncated, occurred_at=now,
                lead_locked=True,  # find_or_create_lead locked (or created) the row
            )
        if new_mail:
            transaction.on_commit(partial(enqueue_confirmation_mail, optin.pk))
        activity.announce([lead.pk], activity.SUBMISSION)
    return CaptureOutcome(lead, submission, optin, mail_queued=new_mail)


def restart_request(old, client):
    """A fresh request for the address, page and purposes of an expired one (same text versions).

    Subject to the same folding and mail cap as a form submission.
    """
    now = timezone.now()
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(pk=old.lead_id)
        if recent_optin_for(lead, old.page, now) is not None:
            return None
        if mails_in_window(lead, now) >= conf.get("INBOUND_OPTIN_MAX_MAILS_PER_ADDRESS"):
            return None
        optin = OptInRequest.objects.create(
            lead=lead, page=old.page, submission=old.submission, language=old.language,
            ip_truncated=client.ip_truncated, expires_at=now + conf.get("INBOUND_OPTIN_LINK_MAX_AGE"),
        )
        requested = (old.consent_events.filter(kind=ConsentEvent.REQUESTED)
                     .select_related("purpose", "text_version"))
        pairs = [(event.purpose, event.text_version) for event in requested]
        if pairs:
            optin.purposes.set([purpose for purpose, _version in pairs])
            page = old.page.specific if old.page else None
            append_events(lead, ConsentEvent.REQUESTED, pairs, channel="resend-link", opt_in=optin,
                          source_page=page, asset=getattr(page, "asset", None),
                          ip_truncated=client.ip_truncated, occurred_at=now)
        transaction.on_commit(partial(enqueue_confirmation_mail, optin.pk))
    return optin


def request_consents(lead, purposes, client, channel="preference-center"):
    """A fresh double opt-in for purposes granted outside a form, e.g. re-granted in the
    preference center (D6). Returns the request, or None when the mail cap is reached."""
    now = timezone.now()
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(pk=lead.pk)
        if mails_in_window(lead, now) >= conf.get("INBOUND_OPTIN_MAX_MAILS_PER_ADDRESS"):
            return None
        optin = OptInRequest.objects.create(
            lead=lead, page=None, language=client.language, ip_truncated=client.ip_truncated,
            expires_at=now + conf.get("INBOUND_OPTIN_LINK_MAX_AGE"),
        )
        optin.purposes.set(purposes)
        append_events(lead, ConsentEvent.REQUESTED,
                      [(p, p.current_version(client.language)) for p in purposes],
                      channel=channel, opt_in=optin, ip_truncated=client.ip_truncated, occurred_at=now)
        transaction.on_commit(partial(enqueue_confirmation_mail, optin.pk))
    return optin
