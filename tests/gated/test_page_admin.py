"""Editors create gated pages in the Wagtail admin; marketers see submissions and export them."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from wagtail.test.utils.form_data import inline_formset, nested_form_data, rich_text, streamfield

from inbound.pages import GatedPage
from tests.gated.conftest import submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, db):
    user = get_user_model().objects.create_superuser("admin", "admin@example.org", "pw")
    client.force_login(user)
    return client


def _create_data(asset, purposes, fields, action_publish=True):
    data = nested_form_data({
        "title": "Neue Checkliste",
        "slug": "neue-checkliste",
        "kind": "checklist",
        "intro": streamfield([("paragraph", rich_text("<p>Intro</p>"))]),
        "asset": asset.pk,
        "thank_you_text": rich_text("<p>Danke</p>"),
        "confirmation_text": rich_text("<p>Bestätigt</p>"),
        "form_fields": inline_formset(fields),
        "persona_tags": inline_formset([]),
        "topic_tags": inline_formset([]),
        "coupling_notice": "",
        "progressive_questions": 0,
    })
    data["purposes"] = [purposes["nurture"].pk, purposes["phone"].pk]
    if action_publish:
        data["action-publish"] = "action-publish"
    return data


def test_editor_creates_a_gated_page_with_extra_fields(admin_client, demo_site, asset, purposes):
    fields = [
        {"label": "Firma", "field_type": "singleline", "required": False, "choices": "",
         "default_value": "", "help_text": ""},
        {"label": "Größe", "field_type": "dropdown", "required": False, "choices": "1-9\n10+",
         "default_value": "", "help_text": ""},
    ]
    url = f"/admin/pages/add/inbound/gatedpage/{demo_site.root_page_id}/"
    response = admin_client.post(url, _create_data(asset, purposes, fields))
    assert response.status_code == 302, response.content.decode()[:2000]
    page = GatedPage.objects.get(slug="neue-checkliste")
    assert page.live
    assert page.require_marketing_consent is False, "F4: not coupled by default"
    assert [f.label for f in page.form_fields.all()] == ["Firma", "Größe"]
    html = admin_client.get(page.url).content.decode()
    assert 'name="email"' in html and 'name="firma"' in html and 'name="groxdfe"' in html
    assert 'name="consent_email_nurture"' in html and 'name="consent_tracking"' not in html


def test_reserved_field_label_is_refused_in_the_admin(admin_client, demo_site, asset, purposes):
    fields = [{"label": "email", "field_type": "singleline", "required": False, "choices": "",
               "default_value": "", "help_text": ""}]
    url = f"/admin/pages/add/inbound/gatedpage/{demo_site.root_page_id}/"
    response = admin_client.post(url, _create_data(asset, purposes, fields))
    assert response.status_code == 200
    assert not GatedPage.objects.filter(slug="neue-checkliste").exists()


def test_new_page_starts_privacy_friendly(admin_client, demo_site):
    """F5: the create form has no extra fields, no purposes ticked and coupling off."""
    html = admin_client.get(f"/admin/pages/add/inbound/gatedpage/{demo_site.root_page_id}/").content.decode()
    assert 'name="form_fields-TOTAL_FORMS" value="0"' in html
    assert 'name="require_marketing_consent"' in html
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    assert not soup.find("input", attrs={"name": "require_marketing_consent"}).has_attr("checked")
    assert all(not box.has_attr("checked") for box in soup.find_all("input", attrs={"name": "purposes"}))


def test_submissions_list_and_csv_export_for_lead_managers(admin_client, gated_page, on_commit):
    with on_commit():
        submit(admin_client, gated_page, firma="ACME", consent_email_nurture="on")
    listing = admin_client.get(f"/admin/forms/submissions/{gated_page.pk}/")
    assert listing.status_code == 200
    assert "max.muster@example.org" in listing.content.decode()
    export = admin_client.get(f"/admin/forms/submissions/{gated_page.pk}/?export=csv")
    assert export.status_code == 200
    body = b"".join(export.streaming_content).decode() if export.streaming else export.content.decode()
    assert "max.muster@example.org" in body and "ACME" in body and "email-nurture" in body
    xlsx = admin_client.get(f"/admin/forms/submissions/{gated_page.pk}/?export=xlsx")
    assert xlsx.status_code == 200


def test_editor_without_lead_permission_sees_no_submissions(client, gated_page, on_commit):
    from django.contrib.auth.models import Group

    with on_commit():
        submit(client, gated_page, firma="ACME")
    editor = get_user_model().objects.create_user("editor", "editor@example.org", "pw")
    editor.groups.add(Group.objects.get(name="Editors"))
    editor.user_permissions.add(Permission.objects.get(codename="access_admin"))
    client.force_login(editor)
    response = client.get(f"/admin/forms/submissions/{gated_page.pk}/")
    assert response.status_code in (302, 403, 404)
    assert "max.muster@example.org" not in response.content.decode()
    index = client.get("/admin/forms/")
    assert "max.muster@example.org" not in index.content.decode()
    assert gated_page.title not in index.content.decode()


def test_only_the_sites_own_purposes_are_offered_in_the_editor(admin_client, demo_site, purposes):
    from wagtail.models import Page, Site

    from inbound.consent import ConsentPurpose
    from leadsite.models import HomePage

    home_b = HomePage(title="B", slug="b")
    Page.get_first_root_node().add_child(instance=home_b)
    site_b = Site.objects.create(hostname="b.example", root_page=home_b)
    foreign = ConsentPurpose.objects.create(site=site_b, key="b-news", name="B-News", text_de="B-Text")
    html = admin_client.get(f"/admin/pages/add/inbound/gatedpage/{demo_site.root_page_id}/").content.decode()
    assert f'value="{purposes["nurture"].pk}"' in html
    assert f'value="{foreign.pk}"' not in html


def test_legal_settings_page_choosers_are_limited_to_legal_page_types(admin_client, demo_site):
    html = admin_client.get(f"/admin/settings/inbound/legalsettings/{demo_site.pk}/").content.decode()
    assert "inbound.imprintpage" in html.lower() and "inbound.privacypage" in html.lower()
