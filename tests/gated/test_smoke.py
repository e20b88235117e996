import pytest

from inbound.consent import ConsentEvent
from inbound.leads import Lead
from tests.gated.conftest import PDF_BYTES, confirm_path, download_path, submit

pytestmark = pytest.mark.django_db


def test_full_journey_with_locmem_mail(client, gated_page, mailoutbox, on_commit):
    response = client.get(gated_page.url)
    assert response.status_code == 200
    with on_commit():
        response = submit(client, gated_page, consent_email_nurture="on", firma="ACME")
    assert response.status_code == 200, response.content.decode()[:3000]
    assert len(mailoutbox) == 1
    path = confirm_path(mailoutbox[0])
    assert client.get(path).status_code == 200
    lead = Lead.objects.get()
    assert lead.email == "max.muster@example.org"
    assert lead.confirmed_at is None
    with on_commit():
        response = client.post(path)
    assert response.status_code == 200
    lead.refresh_from_db()
    assert lead.confirmed_at is not None
    kinds = list(ConsentEvent.objects.values_list("kind", flat=True))
    assert kinds == ["requested", "doi_sent", "confirmed"]
    assert len(mailoutbox) == 2
    file_response = client.get(download_path(response.content.decode()))
    assert file_response.status_code == 200
    assert b"".join(file_response.streaming_content) == PDF_BYTES
    assert download_path(mailoutbox[1].body)
