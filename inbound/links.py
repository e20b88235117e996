"""Signed, opaque per-lead links: unsubscribe, preference center, erasure confirmation.

Each token carries the lead id and the lead's random key and is signed with the server
secret; no address ever appears in a URL. Rotating `Lead.key` revokes every link.
"""

import functools
import re

from django.conf import settings
from django.core import signing
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.crypto import constant_time_compare

from .presigning import Presigner

UNSUBSCRIBE_SALT = "inbound.unsubscribe"
PREFERENCES_SALT = "inbound.preferences"
ERASURE_SALT = "inbound.erasure"

PREFERENCES_MAX_AGE = 60 * 60 * 24 * 90   # links in mails stay usable for a quarter
ERASURE_MAX_AGE = 60 * 60 * 24 * 2


class LinkError(Exception):
    """Tampered, foreign, expired, or the lead no longer exists."""


_SIGNERS = {(salt, timestamped): Presigner(salt, timestamped)
            for salt in (UNSUBSCRIBE_SALT, PREFERENCES_SALT, ERASURE_SALT) for timestamped in (False, True)}


def _make(lead, salt, timestamped):
    """`signing.dumps` (timestamped) or `Signer.sign_object` of (lead id, key), made as those make
    them (`presigning`: a bulk sender makes two of these per mail)."""
    return _SIGNERS[salt, timestamped].sign_object([lead.pk, lead.key])


def _resolve(token, salt, max_age=None):
    from .leads import Lead

    try:
        if max_age is None:
            lead_id, key = signing.Signer(salt=salt).unsign_object(token)
        else:
            lead_id, key = signing.loads(token, salt=salt, max_age=max_age)
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise LinkError(type(exc).__name__) from exc
    lead = Lead.objects.select_related("site").filter(pk=lead_id).first()
    if lead is None or not constant_time_compare(str(key), lead.key):
        raise LinkError("unknown lead")
    return lead


def unsubscribe_token(lead):
    """Never expires: an unsubscribe link in an old mail must still work (RFC 8058)."""
    return _make(lead, UNSUBSCRIBE_SALT, timestamped=False)


def resolve_unsubscribe(token):
    return _resolve(token, UNSUBSCRIBE_SALT)


def preferences_token(lead):
    return _make(lead, PREFERENCES_SALT, timestamped=True)


def resolve_preferences(token):
    return _resolve(token, PREFERENCES_SALT, max_age=PREFERENCES_MAX_AGE)


def erasure_token(lead):
    return _make(lead, ERASURE_SALT, timestamped=True)


def resolve_erasure(token):
    return _resolve(token, ERASURE_SALT, max_age=ERASURE_MAX_AGE)


def absolute(site, name, token):
    from .mailing import site_base_url

    return absolute_url(site_base_url(site), name, token)


# Characters of a signed token (URL-safe base64, the signer's ":" and the "." of a compressed
# payload), none of which `reverse` quotes: such a token fits between the route's prefix and
# suffix as it is.
TOKEN_CHARACTERS = re.compile(r"[A-Za-z0-9_.:-]+")


@functools.lru_cache(maxsize=64)
def _route(name, urlconf, script_prefix):
    sentinel = "inboundtokensentinel"
    prefix, suffix = reverse(name, urlconf=urlconf, args=[sentinel]).split(sentinel)
    return prefix, suffix


def absolute_url(base_url, name, token):
    """`base_url` + the path of the route `name` for `token`, as `reverse` gives it.

    A bulk sender puts two or three of these into every mail; resolving the route once per
    name instead of on every call saves a noticeable part of a mail's CPU time.
    """
    if not TOKEN_CHARACTERS.fullmatch(token):
        return base_url + reverse(name, args=[token])
    prefix, suffix = _route(name, get_urlconf() or settings.ROOT_URLCONF, get_script_prefix())
    return f"{base_url}{prefix}{token}{suffix}"


def unsubscribe_url(lead):
    return absolute(lead.site, "inbound:unsubscribe", unsubscribe_token(lead))


def preferences_url(lead):
    return absolute(lead.site, "inbound:preferences", preferences_token(lead))


def erasure_url(lead):
    return absolute(lead.site, "inbound:erase", erasure_token(lead))
