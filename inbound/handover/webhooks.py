"""Delivering the site's webhook: signed JSON, retried with backoff, every attempt logged (S4).

Each `WebhookDelivery` is POSTed to the site's webhook URL with these headers:

- `Content-Type: application/json` (the body is UTF-8 JSON, see `summary.as_payload`),
- `X-Inbound-Event`: the event, "lead.mql",
- `X-Inbound-Delivery`: the delivery's id (the same on every retry: receivers deduplicate on it),
- `X-Inbound-Timestamp`: the time of this attempt in Unix seconds,
- `X-Inbound-Signature`: `sha256=<hex>`, the HMAC-SHA256 with the site's webhook secret over
  `f"{timestamp}.{body}"` (the timestamp, a dot, the raw body bytes). Signing the timestamp
  lets a receiver refuse replays of old requests (`verify_signature`, tolerance five minutes).

Any 2xx answer is a success. Anything else (another status, a redirect, a timeout of
`TIMEOUT` seconds, a refused connection) counts as a failed attempt: `attempts`,
`last_status_code` and `last_error` are recorded and the next attempt is due after 1, 2, 4, 8,
16, 32 and 60 minutes; after `MAX_ATTEMPTS` (8) the delivery is "failed" and shows so in the
admin, where it can be retried by hand.

A run (`deliver_due`, beat every minute and queued after each hand-over) claims due deliveries
like the hand-over processor (lease, `SKIP LOCKED` on PostgreSQL) and renews the lease on each
delivery right before it is sent, so no two workers send the same delivery. The request goes out
outside any transaction; its outcome is written only if the delivery is still the one the
worker claimed. A lead whose processing is restricted or objected to by then is not sent.

Nothing is logged but ids and status codes: the payload is personal data.
"""

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, fields
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .. import leases
from ..scoring.models import ScoringSettings
from .models import WebhookDelivery

logger = logging.getLogger(__name__)

TIMEOUT = 10  # seconds per request
MAX_ATTEMPTS = 8
RETRY_BASE = 60  # seconds before the second attempt; doubles per attempt
RETRY_CAP = 60 * 60
BATCH_SIZE = 20
LEASE = timedelta(minutes=5)  # far more than one request may take (TIMEOUT)
SIGNATURE_TOLERANCE = 300  # seconds a receiver should accept between the timestamp and its clock
USER_AGENT = "lawful-inbound-webhook/1"

EVENT_HEADER = "X-Inbound-Event"
DELIVERY_HEADER = "X-Inbound-Delivery"
TIMESTAMP_HEADER = "X-Inbound-Timestamp"
SIGNATURE_HEADER = "X-Inbound-Signature"


# --- signing ---------------------------------------------------------------------------------

def _bytes(value):
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def sign(secret, timestamp, body):
    """The value of `X-Inbound-Signature`: `sha256=` and the hex HMAC-SHA256 of `timestamp.body`."""
    message = _bytes(str(timestamp)) + b"." + _bytes(body)
    return "sha256=" + hmac.new(_bytes(secret), message, hashlib.sha256).hexdigest()


def verify_signature(secret, timestamp, body, header, *, tolerance=SIGNATURE_TOLERANCE, now=None):
    """For receivers: is `header` (the `X-Inbound-Signature` value) the signature of the raw
    request `body` (bytes, exactly as received) and the `X-Inbound-Timestamp` value, made with
    `secret`, and is the timestamp within `tolerance` seconds of `now` (None: not checked)?

    Compares in constant time. Copy this function into the receiving system; it needs only
    the standard library."""
    try:
        stamp = int(timestamp)
    except (TypeError, ValueError):
        return False
    if tolerance is not None and abs((time.time() if now is None else now) - stamp) > tolerance:
        return False
    if not header or not str(header).startswith("sha256="):
        return False
    return hmac.compare_digest(sign(secret, stamp, body), str(header))


def encode(payload):
    """The request body: compact UTF-8 JSON."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


# --- sending ---------------------------------------------------------------------------------

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a delivery: it fails the attempt (and keeps the body and
    signature from going anywhere the site did not configure)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


@dataclass
class Attempt:
    ok: bool
    status_code: int | None = None
    error: str = ""


def post(url, body, headers, timeout=TIMEOUT):
    """One POST; returns an `Attempt` (never raises for network or HTTP errors)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=timeout) as response:
            code = response.status
    except urllib.error.HTTPError as exc:
        return Attempt(False, exc.code, f"HTTP {exc.code} {exc.reason or ''}".strip()[:255])
    except urllib.error.URLError as exc:
        reason = exc.reason
        text = reason if isinstance(reason, str) else f"{type(reason).__name__}: {reason}"
        return Attempt(False, None, str(text)[:255])
    except (TimeoutError, OSError, ValueError) as exc:
        return Attempt(False, None, f"{type(exc).__name__}: {exc}"[:255])
    if 200 <= code < 300:
        return Attempt(True, code)
    return Attempt(False, code, f"HTTP {code}")


def retry_delay(attempts):
    """The wait after the `attempts`-th failed attempt: 1, 2, 4 … minutes, at most an hour."""
    return timedelta(seconds=min(RETRY_BASE * 2 ** max(attempts - 1, 0), RETRY_CAP))


# --- the worker --------------------------------------------------------------------------------

@dataclass
class DeliverResult:
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    batches: int = 0

    def as_dict(self):
        return {f.name: getattr(self, f.name) for f in fields(self)}


def claim(now, batch_size=BATCH_SIZE):
    """Ids of up to `batch_size` pending, due deliveries, now leased to this worker."""
    due = (WebhookDelivery.objects.filter(status=WebhookDelivery.PENDING)
           .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
           .order_by("next_attempt_at", "pk"))
    return leases.claim_due(due, now, batch_size, LEASE)


def deliver_due(now=None, batch_size=BATCH_SIZE, max_batches=None):
    """One run; returns a `DeliverResult`. `now` is injectable for tests (the signature's
    timestamp is always the real time of the request)."""
    clock = (lambda: now) if now is not None else timezone.now
    result = DeliverResult()
    while max_batches is None or result.batches < max_batches:
        ids = claim(clock(), batch_size)
        if not ids:
            break
        result.batches += 1
        for delivery_id in ids:
            outcome = deliver_one(delivery_id, now=clock())
            setattr(result, outcome, getattr(result, outcome) + 1)
    return result


def _take(delivery_id, now):
    """Lock the delivery, check it may go out, renew its lease; returns (delivery, secret) or a
    (None, outcome) when it does not go out."""
    with transaction.atomic():
        delivery = (WebhookDelivery.objects.select_for_update(of=("self",))
                    .select_related("hand_over__lead").filter(pk=delivery_id, status=WebhookDelivery.PENDING)
                    .first())
        if delivery is None:
            return None, "skipped"
        lead = delivery.hand_over.lead
        secret = (ScoringSettings.objects.filter(site_id=delivery.site_id)
                  .values_list("webhook_secret", flat=True).first())
        stop = ""
        if lead.processing_stopped:
            stop = "processing restricted or objected to: not sent"
        elif not secret:
            stop = "no webhook secret configured"
        if stop:
            delivery.status, delivery.last_error, delivery.claimed_until = WebhookDelivery.FAILED, stop, None
            delivery.save(update_fields=["status", "last_error", "claimed_until"])
            return None, "failed"
        delivery.claimed_until = now + LEASE
        delivery.save(update_fields=["claimed_until"])
        return delivery, secret


def deliver_one(delivery_id, *, now=None):
    """Send one delivery; returns "delivered", "retried", "failed" or "skipped"."""
    now = now or timezone.now()
    delivery, secret = _take(delivery_id, now)
    if delivery is None:
        return secret
    body = encode(delivery.payload)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_HEADER: delivery.event,
        DELIVERY_HEADER: str(delivery.pk),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }
    attempt = post(delivery.url, body, headers)
    attempts = delivery.attempts + 1
    changes = {"attempts": attempts, "last_status_code": attempt.status_code, "claimed_until": None}
    if attempt.ok:
        outcome = "delivered"
        changes.update(status=WebhookDelivery.DELIVERED, delivered_at=timezone.now(), last_error="",
                       next_attempt_at=None)
    elif attempts >= MAX_ATTEMPTS:
        outcome = "failed"
        changes.update(status=WebhookDelivery.FAILED, last_error=attempt.error, next_attempt_at=None)
    else:
        outcome = "retried"
        changes.update(last_error=attempt.error, next_attempt_at=now + retry_delay(attempts))
    # Written only if nobody else has moved the delivery on meanwhile (a lease run out).
    updated = WebhookDelivery.objects.filter(pk=delivery.pk, status=WebhookDelivery.PENDING,
                                             attempts=delivery.attempts).update(**changes)
    logger.info("webhook delivery %s: attempt %s, %s (HTTP %s)", delivery.pk, attempts, outcome,
                attempt.status_code)
    return outcome if updated else "skipped"


def retry_now(delivery, now=None):
    """A failed delivery goes out again on the next run (the admin's "retry now"): one more
    attempt, after which it fails again if that one fails too."""
    return (WebhookDelivery.objects.filter(pk=delivery.pk, status=WebhookDelivery.FAILED)
            .update(status=WebhookDelivery.PENDING, next_attempt_at=now or timezone.now(),
                    claimed_until=None))
