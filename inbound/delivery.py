"""Delivering the gated file through a per-lead, expiring, signed link (D7).

The document's own URL never serves a gated asset to the public: `before_serve_document`
(see wagtail_hooks) refuses it to anyone who cannot use the admin.
"""

from django.core import signing
from django.urls import reverse
from django.utils.translation import gettext as _

from . import activity, conf, legal
from .leads import LeadEvent, record_event
from .mailing import SentMail, build_transactional_mail, send_and_record, site_base_url
from .optin import OptInRequest

TOKEN_SALT = "inbound.download"
MAIL_TEMPLATE = "inbound/mail/delivery"


class DownloadDenied(Exception):
    """The link is tampered with, foreign, expired, or its request was never confirmed."""

    def __init__(self, reason, expired=False):
        super().__init__(reason)
        self.expired = expired


def make_token(optin):
    return signing.dumps([optin.pk, optin.key[:12]], salt=TOKEN_SALT, compress=False)


def download_url(optin):
    return site_base_url(optin.lead.site) + reverse("inbound:download", args=[make_token(optin)])


def resolve(token):
    """The confirmed request and its document for a download token, or DownloadDenied."""
    try:
        optin_id, key_prefix = signing.loads(token, salt=TOKEN_SALT,
                                             max_age=conf.get("INBOUND_DOWNLOAD_LINK_MAX_AGE"))
    except signing.SignatureExpired as exc:
        raise DownloadDenied("expired", expired=True) from exc
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise DownloadDenied("bad token") from exc
    optin = (OptInRequest.objects.select_related("lead__site", "page")
             .filter(pk=optin_id, confirmed_at__isnull=False).first())
    if optin is None or not optin.key.startswith(str(key_prefix)) or optin.page is None:
        raise DownloadDenied("unknown request")
    document = getattr(optin.page.specific, "asset", None)
    if document is None:
        raise DownloadDenied("no asset")
    return optin, document


def record_download(optin, document):
    event = record_event(optin.lead, LeadEvent.DOWNLOAD, page=optin.page, document=document.pk,
                         optin=optin.pk)
    activity.announce([optin.lead_id], activity.DOWNLOAD)
    return event


def build_delivery_mail(optin):
    page = optin.page.specific
    return build_transactional_mail(
        site=optin.lead.site,
        to=optin.lead.email,
        subject=_("Your download: %(title)s") % {"title": page.title},
        template_base=MAIL_TEMPLATE,
        context={"page": page, "download_url": download_url(optin),
                 "valid_days": conf.get("INBOUND_DOWNLOAD_LINK_MAX_AGE").days},
        language=optin.language,
    )


def send_delivery_mail(optin_id):
    """Mail the download link after confirmation. Raises on SMTP failure so the task retries."""
    optin = OptInRequest.objects.select_related("lead__site", "page").get(pk=optin_id)
    if optin.confirmed_at is None or optin.page is None or not hasattr(optin.page.specific, "asset"):
        return False
    legal.ensure_complete(optin.lead.site)  # M5: stays queued (task retries) until complete
    send_and_record(optin.lead, SentMail.DELIVERY, build_delivery_mail(optin))
    return True
