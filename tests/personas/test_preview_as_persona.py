"""Admin "preview as persona" (issue 7): an editor sees a page as each persona of its site."""

import json

import pytest
from bs4 import BeautifulSoup
from django.urls import reverse
from wagtail.models import Page

from leadsite.models import StandardPage
from personas.models import Persona
from personas.preview_views import PreviewAsPersonaButton
from tests.personas.test_blocks import (
    CEO_TEXT,
    DEFAULT_TEXT,
    IT_TEXT,
    add_standard_page,
    main_text,
    personas,  # noqa: F401
    recommended_block,
    recommended_paths,
    tag,
    variants_block,
)
from tests.rights.staff import make_site_b, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def page(demo_site, personas):  # noqa: F811
    """A published page whose draft adds a CEO variant (the preview shows the latest revision)."""
    it, ceo = str(personas["it"].pk), str(personas["ceo"].pk)
    page = add_standard_page(demo_site.root_page, "vorschau", [variants_block(DEFAULT_TEXT, **{it: IT_TEXT})])
    draft = StandardPage.objects.get(pk=page.pk)
    draft.body = json.dumps([variants_block(DEFAULT_TEXT, **{it: IT_TEXT, ceo: CEO_TEXT})])
    draft.save_revision()
    return page


@pytest.fixture
def editor(client, demo_site):
    client.force_login(make_user("editor", pages=[demo_site.root_page]))
    return client


def choose_url(page):
    return reverse("personas_preview:choose", args=[page.pk])


def persona_url(page, persona):
    return reverse("personas_preview:persona", args=[page.pk, persona.pk])


def default_url(page):
    return reverse("personas_preview:default", args=[page.pk])


def test_editor_gets_one_preview_link_per_persona_of_the_site(editor, page, personas):  # noqa: F811
    Persona.objects.create(site=make_site_b(), name="Fremde Persona")
    response = editor.get(choose_url(page))
    assert response.status_code == 200
    links = BeautifulSoup(response.content, "html.parser").select("#persona-previews a")
    assert [a["href"] for a in links] == [
        persona_url(page, personas["it"]), persona_url(page, personas["ceo"]), default_url(page)]


def test_editor_sees_the_variant_of_the_chosen_persona(editor, page, personas):  # noqa: F811
    as_it = editor.get(persona_url(page, personas["it"]))
    assert IT_TEXT in main_text(as_it) and DEFAULT_TEXT not in main_text(as_it)
    as_ceo = editor.get(persona_url(page, personas["ceo"]))
    assert CEO_TEXT in main_text(as_ceo), "the latest revision, not only the published one"
    as_nobody = editor.get(default_url(page))
    assert DEFAULT_TEXT in main_text(as_nobody)
    assert IT_TEXT not in main_text(as_nobody) and CEO_TEXT not in main_text(as_nobody)
    assert "no-store" in as_it["Cache-Control"]
    assert "private" not in editor.get(page.url).get("Cache-Control", ""), "the live page is untouched"


def test_preview_recommends_the_personas_content(editor, demo_site, personas):  # noqa: F811
    for_it = add_standard_page(demo_site.root_page, "nur-fuer-it")
    tag(for_it, personas["it"])
    page = add_standard_page(demo_site.root_page, "empfehlungen", [recommended_block(count=2)])
    assert recommended_paths(editor.get(persona_url(page, personas["it"])))[0] == for_it.url
    assert for_it.url not in recommended_paths(editor.get(persona_url(page, personas["ceo"])))


def test_the_normal_editor_preview_ignores_the_editors_cookies(editor, page, personas, monkeypatch):  # noqa: F811
    """Without a chosen persona a preview never looks the editor up as a visitor."""
    monkeypatch.setattr("personas.visitor.known_leads", lambda request: pytest.fail("looked up"))
    assert DEFAULT_TEXT in main_text(editor.get(default_url(page)))


def test_persona_of_another_site_is_not_found(editor, page):
    stranger = Persona.objects.create(site=make_site_b(), name="Fremde Persona")
    assert editor.get(persona_url(page, stranger)).status_code == 404


def test_user_who_may_not_edit_the_page_is_refused(client, demo_site, page, personas):  # noqa: F811
    site_b = make_site_b()
    client.force_login(make_user("other-editor", pages=[site_b.root_page]))
    for url in (choose_url(page), persona_url(page, personas["it"]), default_url(page)):
        response = client.get(url)
        # PermissionDenied, shown as the admin does: back to the dashboard with a message.
        assert (response.status_code, response["Location"]) == (302, reverse("wagtailadmin_home"))


def test_anonymous_is_sent_to_the_login(client, page, personas):  # noqa: F811
    response = client.get(persona_url(page, personas["it"]))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_buttons_in_the_page_header_and_listing(editor, demo_site, page):
    url = choose_url(page)
    edit = editor.get(reverse("wagtailadmin_pages:edit", args=[page.pk]))
    assert edit.status_code == 200
    assert url in edit.content.decode()
    listing = editor.get(reverse("wagtailadmin_explore", args=[demo_site.root_page.pk]))
    assert listing.status_code == 200
    assert url in listing.content.decode()


def test_button_only_for_users_who_may_edit_the_page(demo_site, page):
    site_b = make_site_b()
    editor_a = make_user("editor-a", pages=[demo_site.root_page])
    editor_b = make_user("editor-b", pages=[site_b.root_page])
    assert PreviewAsPersonaButton(page=page).is_shown(editor_a)
    assert not PreviewAsPersonaButton(page=page).is_shown(editor_b)
    assert PreviewAsPersonaButton(page=site_b.root_page).is_shown(editor_b)
    assert not PreviewAsPersonaButton(page=Page.get_first_root_node()).is_shown(
        make_user("admin", superuser=True)), "not for the tree's root"
