"""The hand-over journey of issue 9, end to end, with real parts where they matter:

a visitor submits a gated form and confirms by double opt-in (mails over a real SMTP server on
127.0.0.1), downloads the e-book and clicks in a nurture mail; the Celery tasks (eager) score
each event and the lead crosses the threshold. Sales gets the hand-over mail over SMTP, the
webhook receiver on 127.0.0.1 verifies the HMAC-SHA256 signature of what it got, and a sales
user of the site finds the lead in the sales inbox and accepts it. A sales user of another
site gets 404 for the same lead.
"""

import re

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from inbound import activity
from inbound.handover import process, webhooks
from inbound.handover.access import SALES_GROUP_NAME
from inbound.handover.models import HandOver, WebhookDelivery
from inbound.leads import Lead, LeadEvent
from inbound.nurture.clicks import NURTURE_CLICK
from inbound.scoring.models import MQL, SQL, LeadScore, LifecycleStage, StageChange
from tests.gated.conftest import download_path, submit
from tests.rights.staff import make_site_b
from tests.sales.conftest import make_sales_user, sales_team, second_sales_group

from .conftest import SALES, SECRET, THRESHOLD, set_webhook

ADDRESS = "erika.einkauf@example.org"


def text_of(sink_mail):
    message = sink_mail.message
    part = message.get_body(("plain",))
    return part.get_content() if part is not None else message.get_content()


def mails_to(sink, address):
    return [mail for mail in sink.mails if address in mail.rcpt_tos]


def stage_of(lead):
    return LifecycleStage.objects.get(lead=lead).stage


@pytest.mark.django_db
def test_events_hand_the_lead_to_sales_who_accept_it(client, site, gated_page, configured, sink, receiver,
                                                     on_commit):
    set_webhook(site, receiver.url)
    sales_team(site, Group.objects.get(name=SALES_GROUP_NAME))

    # 1. the visitor asks for the e-book (firma ACME: +20 fit) and confirms the double opt-in
    with on_commit():
        response = submit(client, gated_page, email=ADDRESS, consent_email_nurture="on",
                          consent_tracking="on", firma="ACME")
    assert response.status_code == 200
    [optin] = mails_to(sink, ADDRESS)
    confirm = re.search(r"https?://[^/\s]+(/inbound/confirm/[^\s/]+/)", text_of(optin)).group(1)
    with on_commit():
        assert client.post(confirm).status_code == 200
    lead = Lead.objects.get(email=ADDRESS)
    assert stage_of(lead) == "lead"
    assert LeadScore.objects.get(lead=lead).total == 20  # the answer; no download yet
    assert not HandOver.objects.exists()

    # 2. the download (+40) pushes it over the threshold; a later click (+15) hands nothing over again
    delivery = [mail for mail in mails_to(sink, ADDRESS) if "/inbound/download/" in text_of(mail)]
    assert delivery, [text_of(mail)[:200] for mail in mails_to(sink, ADDRESS)]
    with on_commit():
        response = client.get(download_path(text_of(delivery[0])))
        assert response.status_code == 200
        b"".join(response.streaming_content)
    assert LeadScore.objects.get(lead=lead).total == 60 >= THRESHOLD
    lead.refresh_from_db()
    assert stage_of(lead) == MQL
    assert LeadEvent.objects.filter(lead=lead, kind=LeadEvent.DOWNLOAD).count() == 1
    with on_commit():  # as the click redirect records it (tests/nurture/test_clicks.py)
        LeadEvent.objects.create(lead=lead, site=lead.site, kind=NURTURE_CLICK, data={})
        activity.announce([lead.pk], activity.TRACKING)
    assert LeadScore.objects.get(lead=lead).total == 75
    assert StageChange.objects.filter(lead=lead, to_stage=MQL).count() == 1  # handed over once

    # 3. the hand-over task ran on commit: sales got one mail over SMTP with the reasons
    process.process_due()  # anything left (nothing: it ran already) is not sent again
    [hand_over] = HandOver.objects.filter(lead=lead)
    assert hand_over.processed_at is not None
    [sales_mail] = mails_to(sink, SALES)
    body = text_of(sales_mail)
    assert ADDRESS in sales_mail.message["Subject"] and "60" in sales_mail.message["Subject"]
    assert "E-Book geladen" in body and "Zielkunde" in body and "§7a UWG" in body
    detail_path = reverse("inbound_sales:detail", args=[lead.pk])
    assert detail_path in body

    # 4. the webhook: delivered once (its task ran on commit too), and the receiver can verify it
    assert webhooks.deliver_due().delivered == 0
    [request] = receiver.requests
    headers = request["headers"]
    assert webhooks.verify_signature(SECRET, headers["X-Inbound-Timestamp"], request["body"],
                                     headers["X-Inbound-Signature"])
    assert not webhooks.verify_signature("another secret " + "x" * 32, headers["X-Inbound-Timestamp"],
                                         request["body"], headers["X-Inbound-Signature"])
    assert not webhooks.verify_signature(SECRET, headers["X-Inbound-Timestamp"],
                                         request["body"] + b" ", headers["X-Inbound-Signature"])
    [payload] = receiver.payloads()
    assert payload["lead"]["email"] == ADDRESS
    assert WebhookDelivery.objects.get(hand_over=hand_over).status == WebhookDelivery.DELIVERED

    # 5. a sales user of the site sees the lead in the inbox and accepts it
    seller = make_sales_user("seller", Group.objects.get(name=SALES_GROUP_NAME))
    client.force_login(seller)
    inbox = client.get(reverse("inbound_sales:index"))
    assert inbox.status_code == 200 and ADDRESS in inbox.content.decode()
    assert ADDRESS in client.get(detail_path).content.decode()
    response = client.post(reverse("inbound_sales:accept", args=[lead.pk]), {"note": "Termin vereinbart"})
    assert response.status_code == 302
    assert stage_of(lead) == SQL
    accepted = StageChange.objects.get(lead=lead, to_stage=SQL)
    assert accepted.user == seller and accepted.reason == StageChange.ACCEPTED

    # 6. a sales user of another site: the lead does not exist for them
    site_b = make_site_b()
    other = make_sales_user("seller_b", sales_team(site_b, second_sales_group()))
    client.force_login(other)
    assert client.get(detail_path).status_code == 404
    assert client.post(reverse("inbound_sales:reject", args=[lead.pk]), {"reason": "x"}).status_code == 404
    assert ADDRESS not in client.get(reverse("inbound_sales:index")).content.decode()
    assert stage_of(lead) == SQL
