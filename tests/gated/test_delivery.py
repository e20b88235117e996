"""Delivery (D7): only a per-lead, expiring, signed link serves the file."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from freezegun import freeze_time
from wagtail.documents import get_document_model

from inbound import delivery
from inbound.leads import LeadEvent
from inbound.optin import OptInRequest
from tests.gated.conftest import PDF_BYTES, confirm_path, download_path, submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def confirmed_download(client, gated_page, mailoutbox, on_commit):
    with on_commit():
        submit(client, gated_page)
    with on_commit():
        response = client.post(confirm_path(mailoutbox[0]))
    return download_path(response.content.decode())


def test_download_link_serves_the_file_and_records_the_download(client, confirmed_download, gated_page):
    response = client.get(confirmed_download)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF_BYTES
    assert "attachment" in response["Content-Disposition"]
    assert "no-store" in response["Cache-Control"]
    event = LeadEvent.objects.get(kind=LeadEvent.DOWNLOAD)
    assert event.page_id == gated_page.pk
    assert event.data["document"] == gated_page.asset_id


def test_unconfirmed_request_gets_no_download(client, gated_page, mailoutbox, on_commit):
    with on_commit():
        submit(client, gated_page)
    token = delivery.make_token(OptInRequest.objects.get())
    response = client.get(f"/inbound/download/{token}/")
    assert response.status_code == 404
    assert LeadEvent.objects.filter(kind=LeadEvent.DOWNLOAD).count() == 0


def test_tampered_download_link_is_refused(client, confirmed_download):
    token = confirmed_download.split("/")[3]
    response = client.get(f"/inbound/download/{token[:-3]}xyz/")
    assert response.status_code == 404
    assert "not valid" in response.content.decode() or "nicht gültig" in response.content.decode()
    assert LeadEvent.objects.filter(kind=LeadEvent.DOWNLOAD).count() == 0


def test_expired_download_link_is_refused_with_a_clear_page(client, confirmed_download):
    with freeze_time(OptInRequest.objects.get().confirmed_at + timedelta(days=8)):
        response = client.get(confirmed_download)
    assert response.status_code == 410
    assert LeadEvent.objects.filter(kind=LeadEvent.DOWNLOAD).count() == 0


def test_documents_own_url_does_not_serve_a_gated_asset_to_the_public(client, gated_page):
    document = gated_page.asset
    response = client.get(document.url)
    assert response.status_code == 404
    media = client.get("/media/" + document.file.name)
    assert media.status_code == 404


def test_admin_users_can_still_open_the_asset(client, gated_page):
    admin = get_user_model().objects.create_superuser("boss", "boss@example.org", "pw")
    client.force_login(admin)
    response = client.get(gated_page.asset.url)
    assert response.status_code == 200


def test_ordinary_documents_stay_public(client, demo_site):
    from django.core.files.base import ContentFile

    document = get_document_model()(title="Preisliste")
    document.file.save("preise.pdf", ContentFile(PDF_BYTES), save=False)
    document.save()
    assert client.get(document.url).status_code == 200
