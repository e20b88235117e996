"""Building mails: plain text plus HTML, the legal footer, proper headers.

All mail the plugin sends is built here, so every mail gets the same footer and headers.
"""

from email.utils import formataddr, make_msgid

from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation

from . import conf, legal


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
