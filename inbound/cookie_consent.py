"""The visitor's cookie choice (T1-T3): reading it, the browser's privacy signals, storing it.

- The choice lives in one strictly necessary, first-party cookie (`inbound_consent`), value
  `<banner text version>.<statistics 0|1><personalisation 0|1>`, e.g. `4.10`. It is set only
  when the visitor chooses (never on a first visit), HttpOnly, SameSite=Lax, Secure in
  production. A choice made on an older banner text version than the site's current one no
  longer counts: the banner asks again and nothing is tracked meanwhile.
- Do-Not-Track (`DNT: 1`) and Global Privacy Control (`Sec-GPC: 1`) count as "reject statistics
  and personalisation" as long as there is no explicit choice; an explicit choice wins. They
  concern tracking only: they never block an explicit action such as confirming a DOI.
- Personalisation builds on statistics (it links the statistics' visitor id to a lead), so it
  is stored only together with statistics.
- The visitor id (`inbound_vid`, 128 random bits) exists only with statistics consent;
  withdrawing statistics deletes it.
"""

import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from wagtail.models import Site

from . import conf
from .cookie_banner import banner_for_site

EXPLICIT = "cookie"
SIGNAL = "signal"
NONE = "none"

COOKIE_VALUE = re.compile(r"^(\d{1,9})\.([01])([01])$")
VISITOR_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Choice:
    """What the visitor allowed. `source`: an explicit choice, a browser signal, or nothing yet."""

    statistics: bool = False
    personalisation: bool = False
    version: int | None = None
    source: str = NONE

    @property
    def explicit(self):
        return self.source == EXPLICIT

    @property
    def decided(self):
        """The banner need not ask: an explicit choice, or a DNT/GPC signal."""
        return self.source != NONE

    def cookie_value(self):
        return f"{self.version}.{int(self.statistics)}{int(self.personalisation)}"


NO_CHOICE = Choice()


def make_choice(statistics, personalisation, version):
    """An explicit choice; personalisation only together with statistics."""
    return Choice(bool(statistics), bool(statistics and personalisation), int(version), EXPLICIT)


def parse_cookie(value):
    """`(version, statistics, personalisation)` from a cookie value, or None if it is not one."""
    match = COOKIE_VALUE.match(value or "")
    if not match:
        return None
    return int(match.group(1)), match.group(2) == "1", match.group(3) == "1"


def privacy_signal(request):
    """The browser asks not to be tracked: DNT: 1 or Sec-GPC: 1."""
    meta = request.META
    return meta.get("HTTP_DNT", "").strip() == "1" or meta.get("HTTP_SEC_GPC", "").strip() == "1"


def choice_for_request(request):
    """The visitor's choice for this request (computed once per request)."""
    choice = getattr(request, "_inbound_choice", None)
    if choice is None:
        choice = _read_choice(request)
        request._inbound_choice = choice
    return choice


def _read_choice(request):
    parsed = parse_cookie(request.COOKIES.get(conf.get("INBOUND_CONSENT_COOKIE_NAME")))
    if parsed is not None:
        site = Site.find_for_request(request)
        version, statistics, personalisation = parsed
        # A version newer than the cached one can only be a choice just made on a change that
        # another process has not seen yet; an older one was given on texts no longer shown.
        if site is not None and version >= banner_for_site(site).version:
            return make_choice(statistics, personalisation, version)
    if privacy_signal(request):
        return Choice(source=SIGNAL)
    return NO_CHOICE


def visitor_id_from_cookie(request):
    """The visitor id in the request's cookie if it is well-formed (whatever the consent)."""
    value = request.COOKIES.get(conf.get("INBOUND_VISITOR_COOKIE_NAME"), "")
    return value if VISITOR_ID.match(value) else None


def visitor_id(request, create=False):
    """The visitor id, only with statistics consent. With `create`, a visitor who consented
    but has no (valid) id cookie gets a new one; the middleware sets it on the response."""
    if not choice_for_request(request).statistics:
        return None
    existing = visitor_id_from_cookie(request) or getattr(request, "_inbound_new_visitor_id", None)
    if existing is None and create:
        existing = new_visitor_id()
        request._inbound_new_visitor_id = existing
    return existing


def new_visitor_id():
    return secrets.token_hex(16)  # 128 bits


# --- writing cookies ----------------------------------------------------------------------------

def _secure():
    secure = conf.get("INBOUND_TRACKING_COOKIE_SECURE")
    return settings.SESSION_COOKIE_SECURE if secure is None else secure


def set_choice_cookie(response, choice):
    response.set_cookie(
        conf.get("INBOUND_CONSENT_COOKIE_NAME"), choice.cookie_value(),
        max_age=int(conf.get("INBOUND_CONSENT_COOKIE_AGE").total_seconds()),
        secure=_secure(), httponly=True, samesite="Lax",
    )


def set_visitor_cookie(response, visitor):
    response.set_cookie(
        conf.get("INBOUND_VISITOR_COOKIE_NAME"), visitor,
        max_age=int(conf.get("INBOUND_VISITOR_COOKIE_AGE").total_seconds()),
        secure=_secure(), httponly=True, samesite="Lax",
    )


def delete_visitor_cookie(response):
    """Expire the visitor cookie, with the attributes it was set with (Secure included, which
    `HttpResponse.delete_cookie` would leave out)."""
    response.set_cookie(conf.get("INBOUND_VISITOR_COOKIE_NAME"), "", max_age=0,
                        expires="Thu, 01 Jan 1970 00:00:00 GMT", secure=_secure(), httponly=True,
                        samesite="Lax")


# --- same-origin check for the choice endpoint ---------------------------------------------------

def is_same_origin(request):
    """True if the POST comes from a page of this site: its Origin header, or without one its
    Referer, names this host (or a CSRF_TRUSTED_ORIGINS entry). Neither: False.

    The choice endpoint is exempt from Django's CSRF check so that the banner needs no CSRF
    cookie on pages without forms (T1); this check keeps other sites from setting a choice.
    """
    allowed = {f"{request.scheme}://{request.get_host()}".lower()}
    allowed |= {origin.lower() for origin in settings.CSRF_TRUSTED_ORIGINS if "*" not in origin}
    origin = request.META.get("HTTP_ORIGIN")
    if origin is not None:
        return origin.lower() in allowed
    referer = request.META.get("HTTP_REFERER")
    if not referer:
        return False
    parts = urlsplit(referer)
    return bool(parts.scheme and parts.netloc) and f"{parts.scheme}://{parts.netloc}".lower() in allowed
