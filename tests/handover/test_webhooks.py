"""The site's webhook (S4): signed JSON to a real HTTP receiver, retried with backoff, failed after
the last attempt, visible (per site) in the admin, retried by hand with an audit-log entry."""

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from wagtail.models import ModelLogEntry

from inbound.handover import process, webhooks
from inbound.handover.models import HandOver, WebhookDelivery
from inbound.leads import Lead
from inbound.scoring.models import StageChange
from tests.e2e.conftest import free_port
from tests.rights.staff import make_site_b, make_user

from .conftest import SECRET, make_mql, set_webhook

pytestmark = pytest.mark.django_db

HEADERS = ("Content-Type", "X-Inbound-Event", "X-Inbound-Delivery", "X-Inbound-Timestamp",
           "X-Inbound-Signature")


def test_receiver_verifies_signature_and_payload(site, gated_page, configured, receiver):
    set_webhook(site, receiver.url)
    lead = make_mql(site, gated_page)
    process.process_due()
    delivery = WebhookDelivery.objects.get()
    assert webhooks.deliver_due().delivered == 1

    [request] = receiver.requests
    headers = request["headers"]
    assert all(name in headers for name in HEADERS)
    assert headers["Content-Type"] == "application/json" and headers["X-Inbound-Event"] == "lead.mql"
    assert headers["X-Inbound-Delivery"] == str(delivery.pk)
    assert abs(int(headers["X-Inbound-Timestamp"]) - time.time()) < 60
    assert webhooks.verify_signature(SECRET, headers["X-Inbound-Timestamp"], request["body"],
                                     headers["X-Inbound-Signature"])
    payload = json.loads(request["body"])
    assert payload["event"] == "lead.mql" and payload["schema_version"] == 1
    assert payload["lead"]["email"] == lead.email and payload["score"]["total"] == 75
    assert payload["phone"] == {"allowed": False, "numbers": []}
    assert "5550199" not in request["body"].decode() and lead.key not in request["body"].decode()
    assert {c["channel"] for c in payload["consents"]} == {"tracking", "email"}

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 204)
    assert webhooks.deliver_due().delivered == 0  # never twice


def test_tampered_or_foreign_signature_fails():
    body = b'{"event":"lead.mql"}'
    stamp = int(time.time())
    header = webhooks.sign(SECRET, stamp, body)
    assert webhooks.verify_signature(SECRET, stamp, body, header)
    assert webhooks.verify_signature(SECRET, str(stamp), body.decode(), header)
    assert not webhooks.verify_signature("another-secret-" + "y" * 30, stamp, body, header)
    assert not webhooks.verify_signature(SECRET, stamp, b'{"event":"lead.sql"}', header)
    assert not webhooks.verify_signature(SECRET, stamp + 1, body, header)
    assert not webhooks.verify_signature(SECRET, stamp, body, header.replace("sha256=", "sha1="))
    assert not webhooks.verify_signature(SECRET, stamp, body, "")
    old = stamp - 3600  # a replay of an old request
    assert not webhooks.verify_signature(SECRET, old, body, webhooks.sign(SECRET, old, body))


def test_server_error_is_retried_with_backoff_then_delivered(site, gated_page, configured, receiver, clock):
    receiver.statuses = [500, 503, 200]
    set_webhook(site, receiver.url)
    make_mql(site, gated_page)
    process.process_due(now=clock.now)

    assert webhooks.deliver_due(now=clock.now).retried == 1
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    assert delivery.next_attempt_at == clock.now + timedelta(minutes=1) and "500" in delivery.last_error
    assert webhooks.deliver_due(now=clock.now).retried == 0  # not due yet

    webhooks.deliver_due(now=clock.advance(seconds=61))
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.last_status_code) == (2, 503)
    assert delivery.next_attempt_at == clock.now + timedelta(minutes=2)

    assert webhooks.deliver_due(now=clock.advance(minutes=2)).delivered == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("delivered", 3, "")
    assert len(receiver.requests) == 3
    ids = {request["headers"]["X-Inbound-Delivery"] for request in receiver.requests}
    assert ids == {str(delivery.pk)}  # the same id on every retry: receivers deduplicate on it


def test_unreachable_receiver_fails_after_the_last_attempt(site, gated_page, configured, clock):
    set_webhook(site, f"http://127.0.0.1:{free_port()}/hook")
    make_mql(site, gated_page)
    process.process_due(now=clock.now)
    waits = []
    for _attempt in range(webhooks.MAX_ATTEMPTS):
        delivery = WebhookDelivery.objects.get()
        clock.now = delivery.next_attempt_at or clock.now
        webhooks.deliver_due(now=clock.now)
        delivery.refresh_from_db()
        if delivery.next_attempt_at:
            waits.append(int((delivery.next_attempt_at - clock.now).total_seconds() // 60))
    assert waits == [1, 2, 4, 8, 16, 32, 60]
    assert (delivery.status, delivery.attempts) == ("failed", webhooks.MAX_ATTEMPTS)
    assert delivery.last_error and delivery.last_status_code is None
    assert webhooks.deliver_due(now=clock.advance(days=1)).failed == 0


def test_two_claims_send_one_request(site, gated_page, configured, receiver):
    set_webhook(site, receiver.url)
    make_mql(site, gated_page)
    process.process_due()
    now = timezone.now()
    first = webhooks.claim(now)
    assert first and webhooks.claim(now) == []
    for delivery_id in first:
        webhooks.deliver_one(delivery_id, now=now)
    assert webhooks.deliver_one(first[0], now=now) == "skipped"
    assert len(receiver.requests) == 1


def test_restricted_before_delivery_is_not_sent(site, gated_page, configured, receiver):
    set_webhook(site, receiver.url)
    lead = make_mql(site, gated_page)
    process.process_due()
    Lead.objects.filter(pk=lead.pk).update(objected_at=timezone.now())
    assert webhooks.deliver_due().failed == 1
    assert receiver.requests == []
    assert "objected" in WebhookDelivery.objects.get().last_error


# --- admin -------------------------------------------------------------------------------------

DELIVERIES = "/admin/webhook_deliveries/"
HAND_OVERS = "/admin/hand_overs/"


def foreign_delivery():
    """A failed delivery of site B, with its lead and hand-over."""
    site_b = make_site_b()
    lead = Lead.objects.create(site=site_b, email="fremd@example.org", confirmed_at=timezone.now())
    change = StageChange.objects.create(lead=lead, from_stage="lead", to_stage="mql", reason="threshold")
    hand_over = HandOver.objects.create(lead=lead, site=site_b, stage_change=change, score=99,
                                        processed_at=timezone.now())
    return WebhookDelivery.objects.create(hand_over=hand_over, site=site_b, url="https://b.example.test/x",
                                          status=WebhookDelivery.FAILED, attempts=8, last_error="B-Fehler")


def own_failed_delivery(site, gated_page):
    set_webhook(site, f"http://127.0.0.1:{free_port()}/hook")
    make_mql(site, gated_page)
    process.process_due()
    WebhookDelivery.objects.update(status=WebhookDelivery.FAILED, attempts=8, last_error="Connection refused")
    return WebhookDelivery.objects.get(site=site)


def test_admin_lists_only_own_sites_deliveries(client, site, gated_page, configured):
    own = own_failed_delivery(site, gated_page)
    foreign = foreign_delivery()
    user = make_user("marketing", perms=["inbound.view_handover", "inbound.view_lead"],
                     pages=[site.root_page])
    client.force_login(user)

    listing = client.get(DELIVERIES)
    assert listing.status_code == 200
    html = listing.content.decode()
    assert "Connection refused" in html and "B-Fehler" not in html
    assert "failed" in html.lower()
    hand_overs = client.get(HAND_OVERS).content.decode()
    assert "max00000@example.org" in hand_overs and "fremd@example.org" not in hand_overs
    # may look, not retry (no inbound.change_webhookdelivery)
    assert client.post(f"{DELIVERIES}{own.pk}/retry/").status_code in (302, 403)
    own.refresh_from_db()
    assert own.status == "failed" and foreign.pk


def test_sales_users_do_not_see_the_hand_over_log(client, site, gated_page, configured):
    """N5: sales see their MQL and SQL leads in the inbox only, not the log of every hand-over."""
    from inbound.handover.access import ensure_sales_group

    own_failed_delivery(site, gated_page)
    user = make_user("vertrieb")
    user.groups.add(ensure_sales_group())
    configured.sales_group = user.groups.get(name="Sales")
    configured.save()
    client.force_login(user)
    assert client.get(DELIVERIES).status_code in (302, 403)
    assert client.get(HAND_OVERS).status_code in (302, 403)


def test_admin_without_permission_sees_nothing(client, site, gated_page, configured):
    client.force_login(make_user("redakteur", pages=[site.root_page]))
    assert client.get(DELIVERIES).status_code in (302, 403)


def test_retry_now_is_audited_and_other_sites_are_404(client, site, gated_page, configured, receiver):
    own = own_failed_delivery(site, gated_page)
    foreign = foreign_delivery()
    user = make_user("marketing", perms=["inbound.view_handover", "inbound.view_lead",
                                         "inbound.change_webhookdelivery"], pages=[site.root_page])
    client.force_login(user)

    assert "Retry now" in client.get(DELIVERIES).content.decode()
    assert client.get(f"{DELIVERIES}{foreign.pk}/retry/").status_code == 404
    assert client.post(f"{DELIVERIES}{foreign.pk}/retry/").status_code == 404
    assert client.get(f"{DELIVERIES}{own.pk}/retry/").status_code == 200

    WebhookDelivery.objects.filter(pk=own.pk).update(url=receiver.url)
    response = client.post(f"{DELIVERIES}{own.pk}/retry/")
    assert response.status_code == 302
    own.refresh_from_db()
    assert own.status == "pending"
    entry = ModelLogEntry.objects.get(action="inbound.webhook_retry")
    assert entry.object_id == str(own.pk) and entry.user_id == user.pk
    assert webhooks.deliver_due().delivered == 1
    assert WebhookDelivery.objects.get(pk=foreign.pk).status == "failed"
