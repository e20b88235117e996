"""Marketing mail: the one send-time check (M1, M4) and the one builder (M2, M3, M5, M6, M7).

Every marketing send — nurture steps, tests, anything later — must go through
`send_marketing_mail`, which checks and records the send in one transaction while it holds
the lead's row lock. A withdrawal takes the same lock, so once a withdrawal has committed,
no send can pass the check.
"""

from dataclasses import dataclass
from email.utils import formataddr, make_msgid

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation

from . import conf, legal, links
from .bulkmail import BulkMail
from .consent import has_confirmed_marketing_consent
from .leads import Lead
from .mailing import SentMail, record_sent, site_base_url
from .suppression import is_suppressed

MARKETING_TEMPLATE_VERSION = "marketing/1"


@dataclass(frozen=True)
class SendDecision:
    allowed: bool
    reason: str = ""


def send_decision(lead, *, states=None, legal_missing=None, marketing_ids=None, suppressed=None):
    """M1: may this lead receive marketing mail right now? Call inside the send transaction.

    A batch sender saves queries by passing what it has read under the lead's lock or once per
    site: the lead's ledger `states` (`consent.lead_consent_states` or the same fold of rows it
    read itself), whether the address is `suppressed`, the site's marketing purposes
    (`marketing_ids`) and its `legal.missing_items`. Whatever is not passed is read here.
    A synthetic demo lead (`seed_demo`) never gets mail: its address and consents are made up.
    """
    if lead.synthetic:
        return SendDecision(False, "synthetic demo lead")
    if lead.restricted_at is not None:
        return SendDecision(False, "restricted")
    if lead.objected_at is not None:
        return SendDecision(False, "objected")
    if is_suppressed(lead.site_id, lead.email) if suppressed is None else suppressed:
        return SendDecision(False, "suppressed")
    if not has_confirmed_marketing_consent(lead, states, marketing_ids):
        return SendDecision(False, "no confirmed marketing consent")
    missing = legal.missing_items(lead.site) if legal_missing is None else legal_missing
    if missing:
        return SendDecision(False, "legal notices incomplete")
    return SendDecision(True)


def lock_lead(lead_id):
    """The lead row, locked for the rest of the transaction (the same lock withdrawal takes)."""
    return Lead.objects.select_for_update(of=("self",)).select_related("site").filter(pk=lead_id).first()


def marketing_from_address(site, legal_settings=None):
    legal_settings = legal_settings or legal.settings_for(site)
    address = (legal_settings.marketing_from_email or conf.get("INBOUND_MARKETING_FROM")
               or settings.DEFAULT_FROM_EMAIL)
    return formataddr((legal_settings.company_name, address)) if legal_settings.company_name else address


def list_id(site):
    return f"<newsletter.{site.hostname or 'localhost'}>"


@dataclass(frozen=True)
class MarketingSite:
    """What every marketing mail of one site shares: sender, List-Id, legal footer, base URL.

    Reading it costs a few queries (legal settings, imprint and privacy page); a batch sender
    builds it once per site and batch (`marketing_site`) instead of once per mail, so a change
    of the legal settings reaches the next batch, a minute later at most.
    """

    site: object
    site_name: str
    base_url: str
    footer: dict
    from_address: str
    list_id: str  # the whole List-Id header
    message_id_domain: str


def marketing_site(site):
    legal_settings = legal.settings_for(site)
    site_name = site.site_name or site.hostname
    return MarketingSite(site=site, site_name=site_name, base_url=site_base_url(site),
                         footer=legal.footer_context(site, legal_settings),
                         from_address=marketing_from_address(site, legal_settings),
                         list_id=f"{site_name} {list_id(site)}",
                         message_id_domain=site.hostname or "localhost")


def build_marketing_mail(lead, *, subject, template_base, context=None, language="de", shared=None,
                         message_id=None, render=None):
    """A marketing mail with unsubscribe headers and link, preference link and legal footer.

    `shared` is the site's `MarketingSite` (read here if not given); `message_id` lets a sender
    log the mail before it goes out; `render(template_name, context)` replaces
    `render_to_string` (the dispatcher passes a cached one, `mailframes.FrameCache`).
    """
    shared = shared or marketing_site(lead.site)
    render = render or render_to_string
    unsubscribe_token = links.unsubscribe_token(lead)
    unsubscribe_url = links.absolute_url(shared.base_url, "inbound:unsubscribe", unsubscribe_token)
    with translation.override(language):
        full_context = {
            "site": shared.site, "site_name": shared.site_name, "base_url": shared.base_url,
            "legal": shared.footer, "LANGUAGE_CODE": language, "lead": lead,
            "unsubscribe_url": unsubscribe_url,
            "preferences_url": links.absolute_url(shared.base_url, "inbound:preferences",
                                                  links.preferences_token(lead)),
            **(context or {}),
        }
        text = render(f"{template_base}.txt", full_context)
        html = render(f"{template_base}.html", full_context)
    list_unsubscribe = f"<{unsubscribe_url}>"
    mailto = conf.get("INBOUND_UNSUBSCRIBE_MAILTO")
    if mailto:
        list_unsubscribe += f", <mailto:{mailto}?subject=unsubscribe%20{unsubscribe_token}>"
    message = BulkMail(
        subject=" ".join(str(subject).split()),
        body=text,
        from_email=shared.from_address,
        to=[lead.email],
        headers={
            "Message-ID": message_id or make_msgid(domain=shared.message_id_domain),
            "List-Unsubscribe": list_unsubscribe,
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Id": shared.list_id,
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
