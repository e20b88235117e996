"""The part of the privacy notice the plugin generates from its live configuration (L3, Art. 13).

Everything here is read at render time, so the notice is always current: change a consent
text or a retention period and the next page view shows it.
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.utils.translation import gettext as _

from . import conf, legal
from .consent import ConsentPurpose


@dataclass
class Activity:
    key: str
    name: str
    purpose: str
    legal_basis: str
    data: str = ""


@dataclass
class RetentionPeriod:
    category: str
    period: str


@dataclass
class Notice:
    controller_lines: list
    dpo_contact: str
    dpa_name: str
    dpa_url: str
    activities: list
    purposes: list = field(default_factory=list)
    recipients: list = field(default_factory=list)
    retention: list = field(default_factory=list)


def _days(delta):
    days = delta.days
    return _("%(days)d days") % {"days": days} if days != 1 else _("1 day")


def processing_activities():
    """Every processing activity of the plugin, with purpose and legal basis."""
    return [
        Activity("capture", _("Download forms"),
                 _("Sending you the requested e-book or checklist and keeping your answers."),
                 _("Art. 6(1)(b) GDPR (your request); for marketing only with your consent, "
                   "Art. 6(1)(a) GDPR."),
                 _("e-mail address, your answers, time, IP address shortened to /24 (IPv4) or /48 (IPv6)")),
        Activity("doi", _("Double opt-in"),
                 _("Confirming that the e-mail address belongs to you, and proving your consent "
                   "(Art. 7(1) GDPR)."),
                 _("Art. 6(1)(c) and (f) GDPR (duty and legitimate interest to prove consent)."),
                 _("time of request, confirmation mail and confirmation; consent text version")),
        Activity("nurture", _("E-mail newsletter and nurture mails"),
                 _("Sending you useful content by e-mail, only if you consented."),
                 _("Art. 6(1)(a) GDPR and § 7(2) No. 2 UWG (your consent).")),
        Activity("scoring", _("Lead scoring (profiling)"),
                 _("Estimating your interest from your answers and, with tracking consent, your "
                   "use of our website and e-mails, to decide when our sales team contacts you."),
                 _("Art. 6(1)(a) GDPR (consent to tracking and personalisation).")),
        Activity("tracking", _("Website analytics and personalisation"),
                 _("Counting page views and downloads and showing content that fits you; only with "
                   "your consent in the cookie settings."),
                 _("§ 25(1) TDDDG and Art. 6(1)(a) GDPR (your consent).")),
        Activity("handover", _("Hand-over to sales"),
                 _("Passing your contact and interest to our sales team; a phone call only with your "
                   "consent to phone contact."),
                 _("Art. 6(1)(a) GDPR; Art. 6(1)(f) GDPR for the internal hand-over.")),
    ]


def retention_periods():
    return [
        RetentionPeriod(_("Unconfirmed requests and their answers"),
                        _days(conf.get("INBOUND_UNCONFIRMED_RETENTION"))),
        RetentionPeriod(_("Confirmation links"), _days(conf.get("INBOUND_OPTIN_LINK_MAX_AGE"))),
        RetentionPeriod(_("Download links"), _days(conf.get("INBOUND_DOWNLOAD_LINK_MAX_AGE"))),
        RetentionPeriod(_("Shortened IP addresses"), _days(conf.get("INBOUND_IP_RETENTION"))),
        RetentionPeriod(_("Usage events (page views, downloads, confirmations)"),
                        _days(conf.get("INBOUND_EVENT_RETENTION"))),
        RetentionPeriod(_("Your data without an active consent, after your last activity"),
                        _days(conf.get("INBOUND_INACTIVE_LEAD_RETENTION"))),
        RetentionPeriod(_("Proof of your consent, after you withdrew it (then deleted with your data)"),
                        _days(conf.get("INBOUND_CONSENT_PROOF_RETENTION"))),
    ]


def recipients(legal_settings):
    host = getattr(settings, "EMAIL_HOST", "") or ""
    mail = legal_settings.mail_processor or (
        _("our mail server (%(host)s)") % {"host": host} if host and host != "localhost"
        else _("our own mail server"))
    return [_("E-mail delivery: %(processor)s, as our processor (Art. 28 GDPR).") % {"processor": mail},
            _("Hosting of this website, as our processor (Art. 28 GDPR).")]


def current_purposes(site):
    """Active consent purposes with the text version currently shown, in the active language."""
    purposes = ConsentPurpose.objects.filter(site=site, active=True).order_by("sort_order", "name")
    return [(purpose, purpose.current_version()) for purpose in purposes]


def generated_notice(site):
    settings_ = legal.settings_for(site)
    return Notice(
        controller_lines=legal.footer_context(site, settings_)["controller_lines"],
        dpo_contact=settings_.dpo_contact,
        dpa_name=settings_.dpa_name,
        dpa_url=settings_.dpa_url,
        activities=processing_activities(),
        purposes=current_purposes(site),
        recipients=recipients(settings_),
        retention=retention_periods(),
    )
