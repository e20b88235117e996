"""The plugin's settings, each with a default. Override any of them in Django settings."""

from datetime import timedelta

from django.conf import settings

DEFAULTS = {
    # D3: how long a confirmation link works.
    "INBOUND_OPTIN_LINK_MAX_AGE": timedelta(days=7),
    # D5: unconfirmed requests and their answers are deleted after this window.
    "INBOUND_UNCONFIRMED_RETENTION": timedelta(days=14),
    # R4 retention periods, one per data category; the daily job `retention.run_all` enforces
    # them and the generated privacy notice lists them.
    # A lead without any active (confirmed or pending) consent and without consent proof is
    # deleted after this long without activity: no submission, opt-in request, event, mail or
    # consent event. This is retention, not an Art. 17 erasure: no suppression-list entry.
    "INBOUND_INACTIVE_LEAD_RETENTION": timedelta(days=730),
    # Raw behaviour events (LeadEvent: page views, downloads, confirmations): about 13 months.
    "INBOUND_EVENT_RETENTION": timedelta(days=396),
    # P4: truncated IP addresses in the consent ledger and on opt-in requests are cleared after
    # this (the ledger's hash chain covers a digest of the IP, so it stays valid).
    "INBOUND_IP_RETENTION": timedelta(days=90),
    # Proof of consent after the last consent of a lead was withdrawn or expired: three years
    # (regular limitation period, § 195 BGB). Then the lead goes with its proof, provided it is
    # also inactive (INBOUND_INACTIVE_LEAD_RETENTION): the longer of the two periods wins.
    "INBOUND_CONSENT_PROOF_RETENTION": timedelta(days=1096),
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
    # T1-T3: the strictly necessary cookie holding the banner choice and its text version, and
    # the first-party visitor-id cookie, set only with statistics consent. Secure: None follows
    # SESSION_COOKIE_SECURE (on in production).
    "INBOUND_CONSENT_COOKIE_NAME": "inbound_consent",
    "INBOUND_CONSENT_COOKIE_AGE": timedelta(days=365),
    "INBOUND_VISITOR_COOKIE_NAME": "inbound_vid",
    "INBOUND_VISITOR_COOKIE_AGE": timedelta(days=365),
    "INBOUND_TRACKING_COOKIE_SECURE": None,
    # Tracked events are buffered per process and bulk-inserted every this many seconds (or
    # once BATCH_SIZE are waiting); 0 writes each event at once, on commit (tests).
    "INBOUND_TRACKING_FLUSH_INTERVAL": 2.0,
    "INBOUND_TRACKING_BATCH_SIZE": 500,
    # At most this many events wait in a process; beyond it the oldest are dropped (logged).
    "INBOUND_TRACKING_BUFFER_LIMIT": 20_000,
    # Nurture dispatcher (inbound/nurture/dispatch.py): enrolments claimed per batch; how long a
    # claim keeps other dispatchers away (a crashed dispatcher's batch is free again after it);
    # mails per second per dispatcher (0: no limit); failed sends of a step before it is given
    # up (backoff 1, 2, 4, … minutes, capped by INBOUND_MAIL_BACKOFF_CAP); seconds one run may
    # take before it leaves the rest to the next run.
    "INBOUND_NURTURE_BATCH_SIZE": 200,
    "INBOUND_NURTURE_CLAIM_LEASE": timedelta(minutes=5),
    "INBOUND_NURTURE_RATE_LIMIT": 0,
    "INBOUND_NURTURE_MAX_ATTEMPTS": 6,
    "INBOUND_NURTURE_TIME_BUDGET": 50.0,
    # Dispatchers one beat run may start when more than one batch is due (itself included; the
    # others are queued as tasks for the workers' free processes). None: the number of CPU cores
    # on PostgreSQL, 1 on SQLite (whose writers take turns on the whole file anyway).
    "INBOUND_NURTURE_DISPATCHERS": None,
    # PostgreSQL: whether a nurture mail's transaction waits for its commit to reach the disk.
    # False (the default) commits them with synchronous_commit=off: a crash of the database
    # server (not of a dispatcher) may then forget the last fraction of a second of sends, whose
    # mails go out a second time after the restart. Never a lost mail, never a send after a
    # withdrawal (docs/decisions.md, "Nurture tracks"). True: every send waits for the disk.
    "INBOUND_NURTURE_SYNCHRONOUS_COMMIT": False,
}


def get(name):
    """The value of one plugin setting: Django settings first, then the default."""
    return getattr(settings, name, DEFAULTS[name])
