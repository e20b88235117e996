"""Issue 8 journey: a confirmed lead gets each step once, on time, over real SMTP, until it unsubscribes.

Mail goes through Django's SMTP backend to an aiosmtpd server on 127.0.0.1 (`sink`, see
conftest); the dispatcher's clock is injected, so days pass without sleeping. Also here: one SMTP
connection per batch, and the rate limit between mails, also across batch boundaries.
"""

import re
from datetime import UTC, timedelta
from email.utils import parseaddr

import pytest
from django.test import Client
from django.utils import timezone

from inbound.mailing import SentMail
from inbound.marketing import list_id, marketing_from_address
from inbound.nurture.dispatch import dispatch_due
from inbound.nurture.models import Delivery, Enrolment
from tests.nurture.conftest import make_confirmed_leads

pytestmark = [pytest.mark.smtp, pytest.mark.django_db]

UNSUBSCRIBE = re.compile(r"<(https?://[^/>]+)(/inbound/u/[^/>]+/)>")


def parts_of(mail):
    message = mail.message
    assert message.get_content_type() == "multipart/alternative", message.get_content_type()
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    return (message, message.get_body(preferencelist=("plain",)).get_content(),
            message.get_body(preferencelist=("html",)).get_content())


def assert_marketing_mail(mail, lead, number):
    """Every header and link a nurture mail must carry (M2, M3, M5, M6), as the server got it."""
    site = lead.site
    message, text, html = parts_of(mail)
    assert mail.rcpt_tos == [lead.email]
    assert mail.mail_from == parseaddr(marketing_from_address(site))[1]
    assert str(message["From"]) == marketing_from_address(site), "M6: the marketing sender"
    assert [address.addr_spec for address in message["To"].addresses] == [lead.email]
    assert message["Subject"] == f"Schritt {number}"
    assert re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", str(message["Message-ID"]).strip())
    sent = message["Date"].datetime
    sent = sent if sent.tzinfo else sent.replace(tzinfo=UTC)  # Django writes UTC as -0000
    assert abs(timezone.now() - sent) < timedelta(minutes=5), message["Date"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    match = UNSUBSCRIBE.search(str(message["List-Unsubscribe"]))
    assert match, message["List-Unsubscribe"]
    assert lead.email not in str(message["List-Unsubscribe"]), "no personal data in URLs"
    assert str(message["List-Id"]).endswith(list_id(site))
    assert message["Precedence"] == "bulk"
    unsubscribe_path = match.group(2)
    for part in (text, html):
        assert f"Inhalt {number}" in part
        assert unsubscribe_path in part, "M2: the unsubscribe link in the body too"
        assert "/inbound/p/" in part, "the preference center link"
        assert "/impressum/" in part and "/datenschutz/" in part, "M5: legal footer"
    assert f"Vorschau {number}" in html, "the preheader"
    assert "<img" not in html.lower(), "no tracking pixel"
    return unsubscribe_path


def test_journey_each_step_once_over_smtp_and_nothing_after_one_click_unsubscribe(
        confirmed_lead, track, clock, on_commit, sink):
    result = dispatch_due(now=clock.now)
    assert (result.enrolled, result.sent) == (1, 1)
    [first] = sink.mails
    assert_marketing_mail(first, confirmed_lead, 1)

    assert dispatch_due(now=clock.advance(days=1)).sent == 0, "step 2 waits two days"
    assert len(sink.mails) == 1
    assert dispatch_due(now=clock.advance(days=1, minutes=1)).sent == 1
    assert dispatch_due(now=clock.now).sent == 0, "a re-run at the same time sends nothing again"
    second = sink.mails[1]
    unsubscribe_path = assert_marketing_mail(second, confirmed_lead, 2)
    assert second.message["Message-ID"] != first.message["Message-ID"]

    # The mail provider's one-click unsubscribe: a POST without cookies or CSRF token (RFC 8058).
    provider = Client(enforce_csrf_checks=True)
    with on_commit():
        response = provider.post(unsubscribe_path, "List-Unsubscribe=One-Click",
                                 content_type="application/x-www-form-urlencoded")
    assert 200 <= response.status_code < 300 and not response.has_header("Location")
    enrolment = Enrolment.objects.get()
    assert enrolment.status == Enrolment.EXITED, "the withdrawal ends the track as it commits"

    for days in (2, 30):
        assert dispatch_due(now=clock.advance(days=days, minutes=1)).sent == 0
    assert sink.per_recipient() == {confirmed_lead.email: 2}
    assert [mail.message["Subject"] for mail in sink.mails] == ["Schritt 1", "Schritt 2"]
    assert list(Delivery.objects.order_by("step__sort_order").values_list("step__subject", "status")) == [
        ("Schritt 1", Delivery.SENT), ("Schritt 2", Delivery.SENT)]
    sent_ids = {str(mail.message["Message-ID"]) for mail in sink.mails}
    assert set(SentMail.objects.filter(lead=confirmed_lead, kind=SentMail.MARKETING)
               .values_list("message_id", flat=True)) == sent_ids, "the mail log has exactly these two"


def test_one_smtp_connection_per_batch(demo_site, track, clock, sink):
    leads = make_confirmed_leads(demo_site, 5)
    result = dispatch_due(now=clock.now, batch_size=2)
    assert (result.sent, result.batches) == (5, 3)
    assert sink.per_recipient() == {lead.email: 1 for lead in leads}
    assert sink.connections == 3, "one connection per batch, reused for each of its mails"
    assert [mail.connection for mail in sink.mails] == [0, 0, 1, 1, 2]


def test_rate_limit_paces_every_mail_also_across_batches(demo_site, track, clock, sink, settings):
    """Loose by design (not a benchmark): each gap between arrivals is at least half of 1/rate.
    Without pacing across batches, the first mail of the second batch came right after the last
    mail of the first one."""
    rate = 5.0
    settings.INBOUND_NURTURE_RATE_LIMIT = rate
    make_confirmed_leads(demo_site, 4)
    result = dispatch_due(now=clock.now, batch_size=2)
    assert (result.sent, result.batches) == (4, 2)
    arrivals = [mail.at for mail in sink.mails]
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:], strict=False)]
    assert min(gaps) >= 0.5 / rate, f"mails closer than the rate limit allows: {gaps}"

