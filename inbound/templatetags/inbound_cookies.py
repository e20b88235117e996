"""`{% cookie_banner as banner %}` and `{% cookie_settings_label %}`: the cookie banner (T2) and
the footer's "Cookie-Einstellungen" link (T3), with the site's texts in the active language."""

import logging

from django import template
from django.db import DatabaseError
from django.urls import reverse
from django.utils.translation import gettext
from wagtail.models import Site

from ..cookie_banner import banner_for_site
from ..cookie_consent import choice_for_request

logger = logging.getLogger(__name__)

register = template.Library()

SETTINGS_VIEW = "inbound:cookie_settings"
# No banner on the settings page (it is the second layer) nor on the pages behind the links in
# mails: the double opt-in page shows one button only (D4), and none of them is tracked.
NO_BANNER_VIEWS = {SETTINGS_VIEW, "inbound:confirm", "inbound:resend", "inbound:unsubscribe",
                   "inbound:preferences", "inbound:erase"}


def _banner(request):
    """The site's banner, looked up once per request (None without a site or database)."""
    if not hasattr(request, "_inbound_banner"):
        try:
            site = Site.find_for_request(request)
            request._inbound_banner = banner_for_site(site) if site is not None else None
        except DatabaseError:  # e.g. while rendering the 500 page
            logger.warning("Cookie banner texts unavailable", exc_info=True)
            request._inbound_banner = None
    return request._inbound_banner


def purposes(texts, choice):
    """The second layer's purposes: what is stored, for how long, who receives it."""
    return [
        {"key": key, "title": texts[f"{key}_title"], "stored": texts[f"{key}_stored"],
         "duration": texts[f"{key}_duration"], "recipients": texts[f"{key}_recipients"],
         "checked": getattr(choice, key)}
        for key in ("statistics", "personalisation")
    ]


def banner_context(request):
    banner = _banner(request)
    if banner is None:
        return None
    texts = banner.texts_for()
    choice = choice_for_request(request)
    return {"texts": texts, "choice": choice, "purposes": purposes(texts, choice),
            "action": reverse(SETTINGS_VIEW), "version": banner.version}


@register.simple_tag(takes_context=True)
def cookie_banner(context):
    """The banner's context, with `show` true while the visitor has not chosen (nor sent a
    DNT/GPC signal), except on the pages of `NO_BANNER_VIEWS`. None without a request."""
    request = context.get("request")
    if request is None:
        return None
    request._inbound_banner_checked = True  # the response varies by cookie
    found = banner_context(request)
    if found is None:
        return None
    match = getattr(request, "resolver_match", None)
    excluded = match is not None and match.view_name in NO_BANNER_VIEWS
    return {**found, "show": not found["choice"].decided and not excluded,
            "next": request.get_full_path()}


@register.simple_tag(takes_context=True)
def cookie_settings_label(context):
    """The footer link's label from the site's banner texts ("Cookie-Einstellungen")."""
    request = context.get("request")
    banner = _banner(request) if request is not None else None
    return banner.texts_for()["link_label"] if banner is not None else gettext("Cookie settings")
