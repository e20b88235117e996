"""The plugin's settings, each with a default. Override any of them in Django settings."""

from datetime import timedelta

from django.conf import settings

DEFAULTS = {
    # D3: how long a confirmation link works.
    "INBOUND_OPTIN_LINK_MAX_AGE": timedelta(days=7),
    # D5: unconfirmed requests and their answers are deleted after this window.
    "INBOUND_UNCONFIRMED_RETENTION": timedelta(days=14),
    # D7: how long a download link works.
    "INBOUND_DOWNLOAD_LINK_MAX_AGE": timedelta(days=7),
    # F7: at most one confirmation mail per address and page in this window ...
    "INBOUND_OPTIN_DEDUP_WINDOW": timedelta(hours=1),
    # ... and at most this many confirmation mails per address in that window, over all pages.
    "INBOUND_OPTIN_MAX_MAILS_PER_ADDRESS": 3,
    # F7: submissions per client (truncated IP) per hour.
    "INBOUND_SUBMISSIONS_PER_CLIENT_PER_HOUR": 20,
    # Sending of confirmation mails: attempts before giving up, and the backoff cap.
    "INBOUND_MAIL_MAX_ATTEMPTS": 10,
    "INBOUND_MAIL_BACKOFF_CAP": timedelta(hours=1),
    # A request whose mail task never ran is picked up by the sweeper after this delay.
    "INBOUND_SWEEPER_GRACE": timedelta(minutes=2),
    # From-address for transactional mail until the legal settings provide one.
    "INBOUND_TRANSACTIONAL_FROM": None,
    # The system check for incomplete legal notices: "warning" (development) or "error".
    "INBOUND_LEGAL_CHECK_LEVEL": "warning",
    # From-address for marketing mail until the legal settings provide one.
    "INBOUND_MARKETING_FROM": None,
    # Optional mailto for List-Unsubscribe (RFC 2369), e.g. "unsubscribe@example.com".
    "INBOUND_UNSUBSCRIBE_MAILTO": None,
    # Trust X-Forwarded-For from a reverse proxy (only behind one you control).
    "INBOUND_TRUST_X_FORWARDED_FOR": False,
}


def get(name):
    """The value of one plugin setting: Django settings first, then the default."""
    return getattr(settings, name, DEFAULTS[name])
