"""Click tracking for nurture mails (M7): signed redirects, only for leads with tracking consent.

A tracked link is `/inbound/c/<token>/`, the token a signature over (delivery id, target URL):
nobody can make it redirect elsewhere (no open redirect), and it names no person. The click is
recorded only if the lead still has tracking consent when clicking; the redirect happens anyway.
Leads without tracking consent get the plain links. There are no open pixels.
"""

import re

from django.core import signing
from django.utils import timezone

from ..leads import LeadEvent
from ..links import absolute_url
from ..mailing import site_base_url
from ..presigning import Presigner

SALT = "inbound.nurture.click"
MAX_AGE = 60 * 60 * 24 * 400  # links in a mail keep working for over a year
NURTURE_CLICK = "nurture.click"

HREF = re.compile(r'href="(https?://[^"]+)"')


class ClickError(Exception):
    """Tampered or foreign token."""


_SIGNER = Presigner(SALT, timestamped=True)


def click_token(delivery_id, url):
    """`signing.dumps([delivery_id, url], salt=SALT, compress=True)`, made faster (`presigning`)."""
    return _SIGNER.sign_object([delivery_id, url], compress=True)


def resolve(token):
    try:
        delivery_id, url = signing.loads(token, salt=SALT, max_age=MAX_AGE)
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise ClickError(type(exc).__name__) from exc
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ClickError("not a web link")
    return int(delivery_id), url


def tracked_url(site, delivery_id, url, base_url=None):
    base_url = site_base_url(site) if base_url is None else base_url
    return absolute_url(base_url, "inbound:nurture_click", click_token(delivery_id, url))


def rewrite_links(html, text, site, delivery_id):
    """The body with every web link replaced by its tracked redirect (HTML and text parts)."""
    mapping = {}
    base_url = site_base_url(site)

    def tracked(url):
        if url not in mapping:
            mapping[url] = tracked_url(site, delivery_id, url, base_url)
        return mapping[url]

    html = HREF.sub(lambda match: f'href="{tracked(match.group(1).replace("&amp;", "&"))}"', html)
    if mapping:
        # One pass, longest URL first, whole URLs only: replacing URL by URL would rewrite a link
        # to the site's home page again inside every tracked link already written (same prefix).
        urls = re.compile("(?:" + "|".join(re.escape(url) for url in sorted(mapping, key=len, reverse=True))
                          + r")(?![\w/%?#&=~+-])")
        text = urls.sub(lambda match: mapping[match.group(0)], text)
    return html, text


def record_click(delivery_id):
    """Record the first and every click of a delivery, if the lead still allows tracking."""
    from ..known_visitor import confirmed_tracking_consent
    from .models import Delivery

    delivery = (Delivery.objects.select_related("enrolment__lead", "step")
                .filter(pk=delivery_id, tracked=True).first())
    if delivery is None:
        return False
    lead = delivery.enrolment.lead
    allowed = (not lead.processing_stopped and type(lead).objects.filter(pk=lead.pk)
               .filter(confirmed_tracking_consent()).exists())
    if not allowed:
        return False
    now = timezone.now()
    Delivery.objects.filter(pk=delivery.pk, clicked_at__isnull=True).update(clicked_at=now)
    LeadEvent.objects.create(site_id=lead.site_id, lead=lead, kind=NURTURE_CLICK, occurred_at=now,
                             page=None, data={"delivery": delivery.pk, "step": delivery.step_id,
                                              "track": delivery.enrolment.track_id})
    from .. import activity

    activity.announce([lead.pk], activity.TRACKING)
    return True
