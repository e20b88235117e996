"""Confirming (D3, D4): GET never confirms, POST does once; bad tokens change nothing."""

from datetime import timedelta

import pytest
from django.core import signing
from freezegun import freeze_time

from inbound import optin
from inbound.consent import ConsentEvent
from inbound.leads import Lead, LeadEvent
from inbound.optin import OptInRequest
from tests.gated.conftest import confirm_path, download_path, submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def pending(client, gated_page, mailoutbox, on_commit):
    with on_commit():
        submit(client, gated_page, consent_email_nurture="on")
    return confirm_path(mailoutbox[0])


def _ledger_kinds():
    return list(ConsentEvent.objects.order_by("seq").values_list("kind", flat=True))


def test_get_shows_one_button_and_confirms_nothing(client, pending):
    response = client.get(pending)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('type="submit"') == 1
    assert 'method="post"' in html
    assert Lead.objects.get().confirmed_at is None
    assert _ledger_kinds() == ["requested", "doi_sent"]
    assert response["Cache-Control"] == "no-store" or "no-store" in response["Cache-Control"]


def test_post_confirms_records_events_and_shows_download(client, pending, gated_page, mailoutbox, on_commit):
    with on_commit():
        response = client.post(pending)
    assert response.status_code == 200
    lead = Lead.objects.get()
    assert lead.confirmed_at is not None
    assert _ledger_kinds() == ["requested", "doi_sent", "confirmed"]
    assert LeadEvent.objects.filter(lead=lead, kind=LeadEvent.OPTIN_CONFIRMED).count() == 1
    assert download_path(response.content.decode())
    assert len(mailoutbox) == 2, "the download link is also sent by mail"
    assert download_path(mailoutbox[1].body)


def test_second_confirm_is_harmless_and_says_so(client, pending, mailoutbox, on_commit):
    with on_commit():
        client.post(pending)
    confirmed_at = Lead.objects.get().confirmed_at
    with on_commit():
        response = client.post(pending)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Bereits bestätigt" in html or "Already confirmed" in html
    assert Lead.objects.get().confirmed_at == confirmed_at
    assert _ledger_kinds() == ["requested", "doi_sent", "confirmed"]
    assert len(mailoutbox) == 2, "no second delivery mail"
    assert "Already confirmed" in client.get(pending, HTTP_ACCEPT_LANGUAGE="en").content.decode()


@pytest.mark.parametrize("mangle", [
    lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
    lambda token: token.replace(":", "x", 1),
    lambda token: "garbage",
])
def test_tampered_token_changes_nothing(client, pending, mangle):
    token = pending.split("/")[3]
    bad = f"/inbound/confirm/{mangle(token)}/"
    for method in (client.get, client.post):
        response = method(bad)
        assert response.status_code == 404
        assert "nicht gültig" in response.content.decode() or "not valid" in response.content.decode()
    assert Lead.objects.get().confirmed_at is None
    assert _ledger_kinds() == ["requested", "doi_sent"]


def test_foreign_token_with_valid_signature_but_wrong_key_changes_nothing(client, pending):
    request = OptInRequest.objects.get()
    forged = signing.dumps([request.pk, "guessed-key"], salt=optin.TOKEN_SALT, compress=False)
    response = client.post(f"/inbound/confirm/{forged}/")
    assert response.status_code == 404
    assert Lead.objects.get().confirmed_at is None


def test_token_carries_at_least_128_random_bits():
    request = OptInRequest(pk=1)
    assert len(request.key) >= 32  # 24 random bytes, url-safe base64


def test_expired_token_changes_nothing_and_offers_a_new_mail(client, pending, mailoutbox, on_commit):
    with freeze_time(OptInRequest.objects.get().created_at + timedelta(days=8)):
        response = client.post(pending)
        assert response.status_code == 410
        html = response.content.decode()
        assert "/resend/" in html
        assert Lead.objects.get().confirmed_at is None
        with on_commit():
            response = client.post(pending.rstrip("/") + "/resend/")
        assert response.status_code == 200
    assert len(mailoutbox) == 2
    assert OptInRequest.objects.count() == 2
    new_path = confirm_path(mailoutbox[1])
    assert new_path != pending
    with on_commit():
        client.post(new_path)
    assert Lead.objects.get().confirmed_at is not None
    kinds = _ledger_kinds()
    assert kinds.count("requested") == 2 and kinds[-1] == "confirmed"
    # the new request reuses the exact text version the visitor saw first
    versions = set(ConsentEvent.objects.values_list("text_version_id", flat=True))
    assert len(versions) == 1


def test_resend_for_a_valid_token_does_nothing(client, pending, mailoutbox):
    response = client.post(pending.rstrip("/") + "/resend/")
    assert response.status_code == 404
    assert len(mailoutbox) == 1
