"""Issue 3: the whole double opt-in journey over real HTTP with a real SMTP server.

The site runs in pytest-django's live server; mail goes through Django's SMTP backend to an
aiosmtpd server on 127.0.0.1. Celery runs eagerly and tasks are queued on commit, which really
commits under the live server, so each mail is sent while its request is being answered.
"""

import re
from datetime import UTC, timedelta
from email.utils import parseaddr
from urllib.parse import urlsplit

import pytest
import requests
from django.utils import timezone, translation
from django.utils.translation import gettext

from inbound import optin as optin_module
from inbound import tasks
from inbound.consent import ConsentEvent, verify_chain
from inbound.forms import consent_field_name
from inbound.leads import Lead, LeadEvent
from inbound.mailing import transactional_from_address
from inbound.optin import OptInRequest, SendResult
from tests.e2e.conftest import csrf_token, heading, on_live_server
from tests.gated.conftest import PDF_BYTES

pytestmark = [
    pytest.mark.smtp,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

ADDRESS = "Max.Muster@Example.org"
NORMALISED = "max.muster@example.org"
CONFIRM_LINK = re.compile(r"https?://[^\s\"'<>]+/inbound/confirm/[^\s\"'<>/]+/")
DOWNLOAD_LINK = re.compile(r"https?://[^\s\"'<>]+/inbound/download/[^\s\"'<>/]+/")


def german(message):
    with translation.override("de"):
        return gettext(message)


def browser_like_session():
    session = requests.Session()
    session.headers["Accept-Language"] = "de-DE,de;q=0.9"
    return session


def submit_form(http, page_url, **fields):
    """GET the gated page, then POST its form with the CSRF cookie and token, as a browser would."""
    response = http.get(page_url, timeout=30)
    assert response.status_code == 200, response.text[:3000]
    assert "csrftoken" in http.cookies, "the form page set no CSRF cookie"
    data = {"csrfmiddlewaretoken": csrf_token(response.text), "website": ""}
    data.update(fields)
    return http.post(page_url, data=data, headers={"Referer": page_url}, timeout=30)


def parts_of(mail):
    """(message, text part, html part) of a received mail, checking its MIME structure."""
    message = mail.message
    assert message.get_content_type() == "multipart/alternative", message.get_content_type()
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return message, text, html


def single_link(pattern, text, html):
    """The one link matching `pattern`, which must appear identically in both parts."""
    in_text, in_html = set(pattern.findall(text)), set(pattern.findall(html))
    assert len(in_text) == 1, f"expected one link in the text part:\n{text}"
    assert in_html == in_text, f"the HTML part links elsewhere: {in_html} vs {in_text}"
    return in_text.pop()


def assert_transactional_headers(message, site):
    assert message["Message-ID"], "no Message-ID header"
    assert re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", str(message["Message-ID"]).strip())
    assert message["Date"] is not None, "no Date header"
    sent = message["Date"].datetime
    if sent.tzinfo is None:  # Django writes UTC as "-0000", which parses as a naive datetime
        sent = sent.replace(tzinfo=UTC)
    assert abs(timezone.now() - sent) < timedelta(minutes=5), f"implausible Date: {message['Date']}"
    name, address = parseaddr(transactional_from_address(site))
    assert address, "the site has no transactional from-address"
    assert [(a.display_name, a.addr_spec) for a in message["From"].addresses] == [(name, address)]
    assert message["Auto-Submitted"] == "auto-generated"


def ledger(lead):
    return list(ConsentEvent.objects.filter(lead=lead).order_by("seq")
                .values_list("kind", "purpose__key", "channel"))


def test_double_opt_in_journey_over_http_and_smtp(live_server, smtp_server, demo_site, gated_page,
                                                  purposes, asset):
    http = browser_like_session()
    page_url = live_server.url + urlsplit(gated_page.full_url).path
    site_netloc = urlsplit(demo_site.root_url).netloc  # links in mails use the Wagtail Site
    nurture = purposes["nurture"]

    # 1. Submit: the visitor sees "check your inbox"; nothing is confirmed.
    response = submit_form(http, page_url, email=ADDRESS, firma="ACME GmbH",
                           **{consent_field_name(nurture): "on"})
    assert response.status_code == 200, response.text[:3000]
    assert heading(response.text) == german("Please check your inbox")
    lead = Lead.objects.get(site=demo_site, email=NORMALISED)
    assert lead.confirmed_at is None
    request_ = OptInRequest.objects.get(lead=lead)
    assert request_.mail_sent_at is not None, f"mail not sent: {request_.mail_last_error!r}"
    assert list(request_.purposes.values_list("key", flat=True)) == [nurture.key]

    # 2. The double opt-in mail really arrived at the SMTP server.
    [doi] = smtp_server.wait_for(1)
    assert doi.rcpt_tos == [NORMALISED]
    assert doi.mail_from == parseaddr(transactional_from_address(demo_site))[1]
    message, text, html = parts_of(doi)
    assert_transactional_headers(message, demo_site)
    assert [a.addr_spec for a in message["To"].addresses] == [NORMALISED]
    assert gated_page.title in message["Subject"]
    assert "<img" not in html.lower(), "a transactional mail must not carry images or tracking pixels"
    confirm_link = single_link(CONFIRM_LINK, text, html)
    assert urlsplit(confirm_link).netloc == site_netloc
    assert not DOWNLOAD_LINK.search(text + html), "the download must not be sent before confirmation"

    # 3. Opening the link (GET) shows a button and confirms nothing.
    confirm_url = on_live_server(confirm_link, live_server)
    response = http.get(confirm_url, timeout=30)
    assert response.status_code == 200, response.text[:3000]
    assert heading(response.text) == german("Confirm your e-mail address")
    assert german("Yes, confirm my e-mail address") in response.text
    lead.refresh_from_db()
    request_.refresh_from_db()
    assert lead.confirmed_at is None
    assert request_.confirmed_at is None
    assert [kind for kind, _key, _channel in ledger(lead)] == ["requested", "doi_sent"]
    assert len(smtp_server.received) == 1

    # 4. Pressing the button (POST) confirms the address and the ticked purpose.
    response = http.post(confirm_url, data={"csrfmiddlewaretoken": csrf_token(response.text)},
                         headers={"Referer": confirm_url}, timeout=30)
    assert response.status_code == 200, response.text[:3000]
    assert heading(response.text) == german("Thank you for confirming")
    lead.refresh_from_db()
    request_.refresh_from_db()
    assert lead.confirmed_at is not None
    assert request_.confirmed_at is not None
    assert ledger(lead) == [
        (ConsentEvent.REQUESTED, nurture.key, "web-form"),
        (ConsentEvent.DOI_SENT, nurture.key, "mail"),
        (ConsentEvent.CONFIRMED, nurture.key, "doi-link"),
    ]
    assert verify_chain(ConsentEvent.objects.filter(lead=lead).order_by("seq")) == []

    # 5. The delivery mail arrives; its link downloads the asset, without any session cookie.
    received = smtp_server.wait_for(2)
    assert len(received) == 2, "exactly one confirmation mail and one delivery mail"
    delivery = received[1]
    assert delivery.rcpt_tos == [NORMALISED]
    message, text, html = parts_of(delivery)
    assert_transactional_headers(message, demo_site)
    assert message["Message-ID"] != doi.message["Message-ID"]
    assert "<img" not in html.lower()
    download_link = single_link(DOWNLOAD_LINK, text, html)
    assert urlsplit(download_link).netloc == site_netloc

    download = requests.get(on_live_server(download_link, live_server), timeout=30)
    assert download.status_code == 200, download.text[:3000]
    assert download.headers["Content-Disposition"].startswith("attachment")
    with asset.file.open("rb") as stored:
        asset_bytes = stored.read()
    assert asset_bytes == PDF_BYTES
    assert download.content == asset_bytes
    assert LeadEvent.objects.filter(lead=lead, kind=LeadEvent.DOWNLOAD).count() == 1
    assert len(smtp_server.received) == 2


def test_confirmation_mail_survives_smtp_outage(live_server, smtp_down, smtp_server_factory,
                                                settings, demo_site, gated_page, purposes):
    http = browser_like_session()
    page_url = live_server.url + urlsplit(gated_page.full_url).path
    nurture = purposes["nurture"]

    # The SMTP server is down: the visitor still gets the normal answer, nothing is lost.
    before = timezone.now()
    response = submit_form(http, page_url, email=ADDRESS, **{consent_field_name(nurture): "on"})
    assert response.status_code == 200, response.text[:3000]
    assert heading(response.text) == german("Please check your inbox")
    request_ = OptInRequest.objects.get(lead__email=NORMALISED)
    assert request_.mail_sent_at is None
    assert request_.mail_failed_at is None
    assert request_.mail_attempts == 1
    assert request_.mail_last_error, "the failure must be recorded"
    assert request_.mail_next_attempt_at is not None
    assert before < request_.mail_next_attempt_at <= timezone.now() + timedelta(minutes=2)
    assert timezone.now() < request_.mail_next_attempt_at
    assert [kind for kind, _key, _channel in ledger(request_.lead)] == ["requested"]

    # The server comes back; before the retry is due, nobody sends.
    server = smtp_server_factory()
    assert settings.EMAIL_PORT == server.port != smtp_down
    assert tasks.sweep_unsent_optin_mails() == {}
    assert optin_module.send_confirmation_mail(request_.pk) == SendResult.NOT_DUE
    assert server.received == []

    # Time passes (the request is past the sweeper's grace, the retry is due): the sweeper
    # sends the mail, and a second sweeper run (or a late task) does not send it again.
    past = timezone.now() - timedelta(minutes=10)
    OptInRequest.objects.filter(pk=request_.pk).update(created_at=past, mail_next_attempt_at=past)
    assert tasks.sweep_unsent_optin_mails() == {str(SendResult.SENT): 1}
    assert tasks.sweep_unsent_optin_mails() == {}
    assert optin_module.send_confirmation_mail(request_.pk) == SendResult.ALREADY_DONE

    [mail] = server.wait_for(1)
    assert mail.rcpt_tos == [NORMALISED]
    _message, text, html = parts_of(mail)
    confirm_link = single_link(CONFIRM_LINK, text, html)
    token = urlsplit(confirm_link).path.rstrip("/").rsplit("/", 1)[-1]
    assert optin_module.resolve_token(token).pk == request_.pk
    request_.refresh_from_db()
    assert request_.mail_sent_at is not None
    assert request_.mail_attempts == 2
    assert [kind for kind, _key, _channel in ledger(request_.lead)] == ["requested", "doi_sent"]
    wait_a_moment = server.wait_for(1, timeout=0.5)  # nothing else trickles in
    assert len(wait_a_moment) == 1
