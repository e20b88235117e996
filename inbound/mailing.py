"""Building mails: plain text plus HTML, the legal footer, proper headers.

All mail the plugin sends is built here, so every mail gets the same footer and headers.
"""

from email.utils import formataddr, make_msgid

from django.core.mail import EmailMultiAlternatives
from django.db import models
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from . import conf, legal


class SentMail(models.Model):
    """One mail the plugin sent to a lead: for the lead's timeline and data export (R1)."""

    OPTIN = "optin"
    DELIVERY = "delivery"
    MARKETING = "marketing"
    PREFERENCES = "preferences"
    ERASURE = "erasure"
    # Internal: the hand-over summary mailed to the site's sales address (not to the lead), kept
    # here so the lead's timeline and data export show that and when sales was told (N4).
    SALES = "sales"
    KIND_CHOICES = [(OPTIN, _("opt-in confirmation")), (DELIVERY, _("download delivery")),
                    (MARKETING, _("marketing")), (PREFERENCES, _("preference link")),
                    (ERASURE, _("erasure confirmation")), (SALES, _("hand-over to sales (internal)"))]

    lead = models.ForeignKey("inbound.Lead", on_delete=models.CASCADE, related_name="sent_mails",
                             db_index=False)  # the (lead, sent_at) index serves it
    kind = models.CharField(_("kind"), max_length=16, choices=KIND_CHOICES)
    subject = models.CharField(_("subject"), max_length=255)
    message_id = models.CharField(_("Message-ID"), max_length=255, blank=True)
    template_version = models.CharField(_("template version"), max_length=32, blank=True)
    sent_at = models.DateTimeField(_("sent"), default=timezone.now)

    class Meta:
        verbose_name = _("sent mail")
        verbose_name_plural = _("sent mails")
        indexes = [models.Index(fields=["lead", "sent_at"], name="inbound_sentmail_lead_time")]

    def __str__(self):
        return f"{self.kind} {self.sent_at:%Y-%m-%d %H:%M}"


def record_sent(lead, kind, message, template_version=""):
    return SentMail.objects.create(lead=lead, kind=kind, subject=str(message.subject)[:255],
                                   message_id=message.extra_headers.get("Message-ID", "")[:255],
                                   template_version=template_version)


def send_and_record(lead, kind, message, template_version=""):
    """Send one mail (raising on failure) and record it for the lead."""
    message.send(fail_silently=False)
    return record_sent(lead, kind, message, template_version)


def site_base_url(site):
    """Absolute base URL of a Wagtail site, without a trailing slash."""
    return site.root_url.rstrip("/")


def transactional_from_address(site):
    """The site's transactional sender (legal settings), with the company as display name."""
    from django.conf import settings

    legal_settings = legal.settings_for(site)
    address = legal_settings.transactional_from_email
    if address:
        return formataddr((legal_settings.company_name, address)) if legal_settings.company_name else address
    return conf.get("INBOUND_TRANSACTIONAL_FROM") or settings.DEFAULT_FROM_EMAIL


def render_parts(template_base, context):
    """Render `<template_base>.txt` and `<template_base>.html` with the same context."""
    text = render_to_string(f"{template_base}.txt", context)
    html = render_to_string(f"{template_base}.html", context)
    return text, html


def build_transactional_mail(*, site, to, subject, template_base, context, language="de"):
    """A transactional mail (opt-in confirmation, delivery): no advertising, no tracking (D2, M6)."""
    with translation.override(language):
        full_context = {
            "site": site,
            "site_name": site.site_name or site.hostname,
            "base_url": site_base_url(site),
            "legal": legal.footer_context(site),
            "LANGUAGE_CODE": language,
            **context,
        }
        text, html = render_parts(template_base, full_context)
        subject = " ".join(str(subject).split())  # never a line break in a header
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=transactional_from_address(site),
        to=[to],
        headers={
            "Message-ID": make_msgid(domain=site.hostname or "localhost"),
            "Auto-Submitted": "auto-generated",
        },
    )
    message.attach_alternative(html, "text/html")
    return message
