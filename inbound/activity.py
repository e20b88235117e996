"""Announcing that leads did something: the one extension point for profile-based features.

Personas (and later scoring and nurture) must react to a submission, a confirmation, a
download, a consented tracking event or a change of consent or restriction, without the plugin's
core knowing them. `announce(lead_ids, reason)` sends the `lead_activity` signal once the current
transaction commits (at once outside one), so receivers only ever see committed rows. Receivers
queue Celery tasks; they must not do slow work in the request.
"""

import logging

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)

SUBMISSION = "submission"
CONFIRMATION = "confirmation"
DOWNLOAD = "download"
TRACKING = "tracking"
CONSENT = "consent"
PROCESSING = "processing"  # restriction or objection set or lifted

# Sent with `lead_ids` (a frozenset of ints) and `reason` (one of the names above).
lead_activity = Signal()


def announce(lead_ids, reason):
    ids = frozenset(int(pk) for pk in lead_ids if pk is not None)
    if not ids:
        return

    def send():
        for receiver, error in lead_activity.send_robust(sender=None, lead_ids=ids, reason=reason):
            if error is not None:
                logger.error("lead_activity receiver %r failed: %r", receiver, error)

    transaction.on_commit(send)
