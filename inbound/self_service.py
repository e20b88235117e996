"""What the preference center does, as plain functions (the views only call these)."""

import logging
from datetime import timedelta
from functools import partial

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from . import capture, links, privacy
from .consent import PENDING, ConsentEvent, ConsentPurpose, lead_consent_states, withdraw
from .leads import Lead, normalise_email
from .mailing import SentMail, build_transactional_mail, send_and_record
from .optin import enqueue_safely

logger = logging.getLogger(__name__)

# F7 for the "manage my data" form: preference links per address and window, whatever the client.
PREFERENCE_MAILS_PER_WINDOW = 3
PREFERENCE_MAIL_WINDOW = timedelta(hours=1)


def stored_data_summary(lead):
    """A short overview of what is stored, for the preference center."""
    return {
        "email": lead.email,
        "created_at": lead.created_at,
        # gated-page answers plus the site's other Wagtail form submissions with the address,
        # i.e. everything the export lists and erasure deletes
        "answers": lead.submissions.count() + len(privacy.other_form_submissions(lead)),
        "consent_events": lead.consent_events.count(),
        "events": lead.events.count(),
        "mails": lead.sent_mails.count(),
        "restricted": lead.restricted_at is not None,
        "objected": lead.objected_at is not None,
    }


def apply_preference_action(lead, data, client):
    """Carry out one button of the preference center. Returns the message to show."""
    action = data.get("action", "")
    purpose = None
    if ":" in action:
        action, _sep, purpose_id = action.partition(":")
        purpose = ConsentPurpose.objects.filter(site_id=lead.site_id, pk=purpose_id if
                                                purpose_id.isdigit() else None).first()
        if purpose is None:
            return _("Nothing was changed.")
    if action == "withdraw":
        with transaction.atomic():
            withdraw(lead, [purpose], channel="preference-center")
        return _("Your consent was withdrawn. It takes effect immediately.")
    if action == "grant":
        state = lead_consent_states(lead).get(purpose.pk)
        if state in (ConsentEvent.CONFIRMED, PENDING):
            return _("Nothing was changed.")
        if capture.request_consents(lead, [purpose], client) is None:
            return _("Too many requests. Please try again later.")
        return _("We have sent you an e-mail. Your consent takes effect once you confirm it there.")
    if action in ("restrict", "unrestrict"):
        privacy.set_restriction(lead, action == "restrict", channel="preference-center")
        return (_("Processing of your data is now restricted to storage.") if action == "restrict"
                else _("The restriction was lifted."))
    if action in ("object", "unobject"):
        privacy.set_objection(lead, action == "object", channel="preference-center")
        return (_("Your objection was recorded. We no longer use your data for marketing.")
                if action == "object" else _("Your objection was withdrawn."))
    if action == "erase":
        from .tasks import mail_erasure_link as task

        transaction.on_commit(partial(enqueue_safely, task, lead.pk, client.language))
        return _("We have sent you an e-mail. Your data is erased once you confirm there.")
    return _("Nothing was changed.")


def _send(lead, kind, subject, template_base, context, language):
    message = build_transactional_mail(site=lead.site, to=lead.email, subject=subject,
                                       template_base=template_base, context=context, language=language)
    return send_and_record(lead, kind, message)


def mail_preference_link(site_id, email, language="de"):
    """Mail the preference link if the address is known on the site; otherwise do nothing.

    At most PREFERENCE_MAILS_PER_WINDOW links per address in PREFERENCE_MAIL_WINDOW, whatever
    the client, so that nobody can flood a known address from changing networks (F7).
    """
    try:
        with transaction.atomic():
            lead = (Lead.objects.select_for_update(of=("self",)).select_related("site")
                    .filter(site_id=site_id, email=normalise_email(email)).first())
            if lead is None:
                return False
            recent = SentMail.objects.filter(lead=lead, kind=SentMail.PREFERENCES,
                                             sent_at__gte=timezone.now() - PREFERENCE_MAIL_WINDOW)
            if recent.count() >= PREFERENCE_MAILS_PER_WINDOW:
                logger.info("Preference link of lead %s not sent again: per-address limit", lead.pk)
                return False
            _send(lead, SentMail.PREFERENCES, _("Your preferences and data"),
                  "inbound/mail/preferences_link", {"preferences_url": links.preferences_url(lead)}, language)
    except OSError:
        logger.warning("Could not send the preference link to a lead of site %s", site_id)
        return False
    return True


def mail_erasure_link(lead_id, language="de"):
    lead = Lead.objects.select_related("site").filter(pk=lead_id).first()
    if lead is None:
        return False
    _send(lead, SentMail.ERASURE, _("Please confirm the erasure of your data"),
          "inbound/mail/erasure_confirm", {"erasure_url": links.erasure_url(lead)}, language)
    return True
