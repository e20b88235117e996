"""Marketing mail: the one send-time check (M1, M4) and the one builder (M2, M3, M5, M6, M7).

Every marketing send — nurture steps, tests, anything later — must go through
`send_marketing_mail`, which checks and records the send in one transaction while it holds
the lead's row lock. A withdrawal takes the same lock, so once a withdrawal has committed,
no send can pass the check.
"""

from dataclasses import dataclass
from email.utils import formataddr, make_msgid

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation

from . import conf, legal, links
from .consent import has_confirmed_marketing_consent
from .leads import Lead
from .mailing import SentMail, record_sent, site_base_url
from .suppression import is_suppressed

MARKETING_TEMPLATE_VERSION = "marketing/1"


@dataclass(frozen=True)
class SendDecision:
    allowed: bool
    reason: str = ""


def send_decision(lead, *, states=None, legal_missing=None):
    """M1: may this lead receive marketing mail right now? Call inside the send transaction.

    A batch sender passes the lead's ledger `states` (`consent.lead_consent_states`, read under
    the lead's lock) and the site's `legal.missing_items` (looked up once per site) to save
    queries; both are read here otherwise.
    """
    if lead.restricted_at is not None:
        return SendDecision(False, "restricted")
    if lead.objected_at is not None:
        return SendDecision(False, "objected")
    if is_suppressed(lead.site_id, lead.email):
        return SendDecision(False, "suppressed")
    if not has_confirmed_marketing_consent(lead, states):
        return SendDecision(False, "no confirmed marketing consent")
    missing = legal.missing_items(lead.site) if legal_missing is None else legal_missing
    if missing:
        return SendDecision(False, "legal notices incomplete")
    return SendDecision(True)


def lock_lead(lead_id):
    """The lead row, locked for the rest of the transaction (the same lock withdrawal takes)."""
    return Lead.objects.select_for_update(of=("self",)).select_related("site").filter(pk=lead_id).first()


def marketing_from_address(site):
    legal_settings = legal.settings_for(site)
    address = (legal_settings.marketing_from_email or conf.get("INBOUND_MARKETING_FROM")
               or settings.DEFAULT_FROM_EMAIL)
    return formataddr((legal_settings.company_name, address)) if legal_settings.company_name else address


def list_id(site):
    return f"<newsletter.{site.hostname or 'localhost'}>"


def build_marketing_mail(lead, *, subject, template_base, context=None, language="de"):
    """A marketing mail with unsubscribe headers and link, preference link and legal footer."""
    site = lead.site
    unsubscribe_url = links.unsubscribe_url(lead)
    with translation.override(language):
        full_context = {
            "site": site, "site_name": site.site_name or site.hostname, "base_url": site_base_url(site),
            "legal": legal.footer_context(site), "LANGUAGE_CODE": language, "lead": lead,
            "unsubscribe_url": unsubscribe_url, "preferences_url": links.preferences_url(lead),
            **(context or {}),
        }
        text = render_to_string(f"{template_base}.txt", full_context)
        html = render_to_string(f"{template_base}.html", full_context)
    list_unsubscribe = f"<{unsubscribe_url}>"
    mailto = conf.get("INBOUND_UNSUBSCRIBE_MAILTO")
    if mailto:
        list_unsubscribe += f", <mailto:{mailto}?subject=unsubscribe%20{links.unsubscribe_token(lead)}>"
    message = EmailMultiAlternatives(
        subject=" ".join(str(subject).split()),
        body=text,
        from_email=marketing_from_address(site),
        to=[lead.email],
        headers={
            "Message-ID": make_msgid(domain=site.hostname or "localhost"),
            "List-Unsubscribe": list_unsubscribe,
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Id": f"{site.site_name or site.hostname} {list_id(site)}",
            "Precedence": "bulk",
        },
    )
    message.attach_alternative(html, "text/html")
    return message


@dataclass
class SendOutcome:
    sent: bool
    reason: str = ""
    sent_mail: SentMail | None = None


def send_marketing_mail(lead_id, *, subject, template_base, context=None, language="de",
                        connection=None):
    """Check, send and record one marketing mail, all under the lead's row lock (M1, M4).

    Raises on SMTP failure (the transaction rolls back, nothing is recorded), so callers can
    retry. Returns whether the mail went out and, if not, why.
    """
    with transaction.atomic():
        lead = lock_lead(lead_id)
        if lead is None:
            return SendOutcome(False, "no such lead")
        decision = send_decision(lead)
        if not decision.allowed:
            return SendOutcome(False, decision.reason)
        message = build_marketing_mail(lead, subject=subject, template_base=template_base,
                                       context=context, language=language)
        if connection is not None:
            message.connection = connection
        message.send(fail_silently=False)
        sent = record_sent(lead, SentMail.MARKETING, message, MARKETING_TEMPLATE_VERSION)
    return SendOutcome(True, sent_mail=sent)
