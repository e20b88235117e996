"""The gated form as a visitor sees it: fixed fields, unticked consents, validation, limits."""

import pytest
from bs4 import BeautifulSoup

from inbound.leads import Lead
from inbound.pages import GatedFormField
from tests.gated.conftest import submit

pytestmark = pytest.mark.django_db


def _soup(response):
    return BeautifulSoup(response.content.decode(), "html.parser")


def test_form_shows_email_first_and_one_unticked_checkbox_per_purpose(client, gated_page, purposes):
    soup = _soup(client.get(gated_page.url))
    form = soup.find("form", attrs={"method": "post"})
    names = [field["name"] for field in form.find_all(["input", "textarea", "select"])
             if field.get("name") and field["name"] != "csrfmiddlewaretoken"]
    assert names[0] == "email"
    checkboxes = form.find_all("input", attrs={"type": "checkbox"})
    assert [box["name"] for box in checkboxes] == [
        "consent_email_nurture", "consent_tracking", "consent_phone"]
    assert all(not box.has_attr("checked") for box in checkboxes), "F1: never pre-ticked"
    for box in checkboxes:  # F2/F3: each has its own full text in an accessible label
        label = form.find("label", attrs={"for": box["id"]})
        assert label is not None
    nurture_label = form.find("label", attrs={"for": checkboxes[0]["id"]}).get_text(" ", strip=True)
    assert purposes["nurture"].text_de in nurture_label
    assert form.find("input", attrs={"name": "email"}).has_attr("required")
    assert not form.find("input", attrs={"name": "firma"}).has_attr("required"), "F5: only e-mail required"


def test_english_visitors_see_the_english_consent_text(client, gated_page, purposes):
    html = client.get(gated_page.url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert purposes["nurture"].text_en in html
    assert purposes["nurture"].text_de not in html


@pytest.mark.parametrize("email", ["", "not-an-address", "a@b", "max@example.org\r\nBcc: x@evil.test",
                                   "max@exa mple.org", "x" * 250 + "@example.org"])
def test_invalid_email_is_rejected_with_a_message_and_input_kept(client, gated_page, mailoutbox, email):
    response = submit(client, gated_page, email=email, firma="Beispiel AG")
    assert response.status_code == 400
    html = response.content.decode()
    assert "invalid-feedback" in html or "is-invalid" in html
    assert 'value="Beispiel AG"' in html, "the other input is kept"
    assert Lead.objects.count() == 0
    assert mailoutbox == []


def test_email_is_normalised(client, gated_page, on_commit):
    with on_commit():
        submit(client, gated_page, email="  Max.Muster@Bücher.DE ")
    assert Lead.objects.get().email == "max.muster@bücher.de"


def test_line_breaks_in_single_line_fields_are_rejected(client, gated_page, mailoutbox):
    response = submit(client, gated_page, firma="ACME\r\nBcc: victim@example.org")
    assert response.status_code == 400
    assert Lead.objects.count() == 0
    assert mailoutbox == []


def test_over_long_answers_are_rejected(client, gated_page):
    response = submit(client, gated_page, firma="x" * 256)
    assert response.status_code == 400
    response = submit(client, gated_page, nachricht="y" * 5001)
    assert response.status_code == 400
    assert Lead.objects.count() == 0


def test_unicode_answers_are_stored_unchanged(client, gated_page, on_commit):
    with on_commit():
        response = submit(client, gated_page, firma="Müller & Söhne 🚀 <b>GmbH</b>",
                          nachricht="Zeile 1\nZeile 2 — ✓")
    assert response.status_code == 200
    submission = Lead.objects.get().submissions.get()
    assert submission.form_data["firma"] == "Müller & Söhne 🚀 <b>GmbH</b>"
    assert submission.form_data["nachricht"] == "Zeile 1\nZeile 2 — ✓"


def test_user_input_is_escaped_when_the_form_is_shown_again(client, gated_page):
    response = submit(client, gated_page, email="bad", firma='"><script>alert(1)</script>')
    html = response.content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


def test_honeypot_submission_gets_the_same_answer_but_stores_nothing(client, gated_page, mailoutbox,
                                                                      on_commit):
    with on_commit():
        response = submit(client, gated_page, website="http://spam.example")
    assert response.status_code == 200
    assert Lead.objects.count() == 0
    assert mailoutbox == []


def test_csrf_is_enforced(gated_page):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(gated_page.url, {"email": "a@example.org"})
    assert response.status_code == 403
    assert Lead.objects.count() == 0


def test_editor_cannot_name_a_field_like_a_built_in_one(gated_page):
    from django.core.exceptions import ValidationError

    field = GatedFormField(page=gated_page, label="email", field_type="singleline")
    with pytest.raises(ValidationError):
        field.clean()


def test_coupled_download_requires_marketing_consent_and_says_so_before_the_form(
        client, gated_page, purposes, mailoutbox):
    gated_page.require_marketing_consent = True
    gated_page.save_revision().publish()
    html = client.get(gated_page.url).content.decode()
    assert 'id="coupling-notice"' in html
    assert html.index('id="coupling-notice"') < html.index('name="email"')
    response = submit(client, gated_page)
    assert response.status_code == 400
    assert "requires this consent" in response.content.decode() or "erfordert" in response.content.decode()
    assert Lead.objects.count() == 0


def test_default_page_does_not_couple_the_download(client, gated_page, on_commit, mailoutbox):
    html = client.get(gated_page.url).content.decode()
    assert 'id="coupling-notice"' not in html
    with on_commit():
        response = submit(client, gated_page)  # no consent ticked
    assert response.status_code == 200
    assert len(mailoutbox) == 1


def test_privacy_notice_is_one_click_from_the_form_even_without_purposes(client, gated_page):
    """F6: the privacy link sits inside the form, not only in the footer."""
    gated_page.purposes.clear()
    gated_page.save_revision().publish()
    soup = _soup(client.get(gated_page.url))
    form = soup.find("form", attrs={"method": "post"})
    link = form.find("a", class_="form-privacy-link")
    assert link is not None and link["href"].endswith("/datenschutz/")
