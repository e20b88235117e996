"""Persona-targeted content (issue 7): the persona-variants and "recommended next" blocks.

The known visitor of these tests accepted statistics and personalisation in the cookie banner
(cookie `inbound_consent=<banner version>.11`, visitor id `inbound_vid`), then downloaded the
gated page with tracking consent and confirmed: the confirmation links the visitor id to the lead
(`inbound.tracking.after_confirm`), which makes the visitor *known* (`inbound.known_visitor`).
Its persona is set directly (pinned, so that a recompute on new activity leaves it alone).
"""

import json

import pytest
from bs4 import BeautifulSoup
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from wagtail.blocks.struct_block import StructBlockValidationError
from wagtail.models import PageViewRestriction, Site
from wagtail.test.utils.form_data import inline_formset, nested_form_data, rich_text, streamfield

from inbound import consent
from inbound.cookie_banner import banner_for_site
from inbound.leads import Lead, LeadEvent
from leadsite.models import StandardPage
from personas.assignment import LeadPersona
from personas.models import PagePersonaTag, Persona
from personas.visitor import VisitorPersona, visitor_persona
from tests.gated.conftest import (  # noqa: F401
    asset,
    confirm_path,
    download_path,
    fresh_cache,
    gated_page,
    media_root,
    on_commit,
    purposes,
    submit,
)

pytestmark = pytest.mark.django_db

VISITOR = "fedcba9876543210fedcba9876543210"
EMAIL = "petra.persona@example.org"
DEFAULT_TEXT = "Inhalt für alle"
IT_TEXT = "Inhalt für die IT-Leitung"
CEO_TEXT = "Inhalt für die Geschäftsführung"


# --- building blocks -----------------------------------------------------------------------------
def paragraph(text):
    return {"type": "paragraph", "value": f"<p>{text}</p>"}


def variants_block(default_text, **variants_by_persona_id):
    return {"type": "persona_variants", "value": {
        "default": [paragraph(default_text)],
        "variants": [{"persona": str(persona_id), "content": [paragraph(text)]}
                     for persona_id, text in variants_by_persona_id.items()],
    }}


def recommended_block(count=3, heading=""):
    return {"type": "recommended_next", "value": {"heading": heading, "count": count}}


def add_standard_page(parent, slug, body=(), **extra):
    page = StandardPage(title=slug.replace("-", " ").title(), slug=slug, body=json.dumps(list(body)),
                        **extra)
    parent.add_child(instance=page)
    page.save_revision().publish()
    page.refresh_from_db()
    return page


def tag(page, *personas):
    for persona in personas:
        PagePersonaTag.objects.create(page=page, persona=persona)


@pytest.fixture
def personas(demo_site):
    return {
        "it": Persona.objects.create(site=demo_site, name="IT-Leitung", sort_order=0),
        "ceo": Persona.objects.create(site=demo_site, name="Geschäftsführung", sort_order=1),
    }


@pytest.fixture
def variant_page(demo_site, personas):
    """A standard page with a persona-variants block (a variant for IT only)."""
    return add_standard_page(demo_site.root_page, "fuer-sie", [
        paragraph("Einleitung"),
        variants_block(DEFAULT_TEXT, **{str(personas["it"].pk): IT_TEXT}),
    ])


def set_choice(client, site, personalisation=True):
    client.cookies["inbound_consent"] = f"{banner_for_site(site).version}.1{int(personalisation)}"
    client.cookies["inbound_vid"] = VISITOR


def sign_up(client, page, mailoutbox, on_commit):  # noqa: F811
    """Ask for `page`'s download with tracking consent, confirm and download: the lead, linked
    to the visitor."""
    with on_commit():
        response = submit(client, page, email=EMAIL, consent_tracking="on")
    assert response.status_code == 200, response.content.decode()[:2000]
    with on_commit():
        confirmed = client.post(confirm_path(mailoutbox[-1]))
    assert confirmed.status_code == 200
    with on_commit():
        assert client.get(download_path(confirmed.content.decode())).status_code == 200
    lead = Lead.objects.get(email=EMAIL)
    assert LeadEvent.objects.filter(kind=LeadEvent.TRACK_LINKED, lead=lead, visitor_id=VISITOR).exists()
    return lead


def assign(lead, persona):
    LeadPersona.objects.update_or_create(lead=lead, defaults={"persona": persona, "pinned": True})


@pytest.fixture
def known_client(client, demo_site, gated_page, personas, mailoutbox, on_commit):  # noqa: F811
    """A known visitor (personalisation consent, linked lead) whose lead has the IT persona."""
    set_choice(client, demo_site)
    client.lead = sign_up(client, gated_page, mailoutbox, on_commit)
    assign(client.lead, personas["it"])
    return client


def main_text(response):
    assert response.status_code == 200, response.content.decode()[:2000]
    return BeautifulSoup(response.content, "html.parser").find("main").get_text(" ", strip=True)


def recommended_paths(response):
    assert response.status_code == 200, response.content.decode()[:2000]
    section = BeautifulSoup(response.content, "html.parser").select_one("section.recommended-next")
    return [] if section is None else [a["href"] for a in section.select("a")]


def cache_control(response):
    return {part.strip() for part in response.get("Cache-Control", "").split(",") if part.strip()}


def varies_by_cookie(response):
    return "cookie" in {part.strip().lower() for part in response.get("Vary", "").split(",")}


# --- persona variants ------------------------------------------------------------------------------
def test_known_lead_with_consent_gets_its_variant(known_client, variant_page):
    response = known_client.get(variant_page.url)
    text = main_text(response)
    assert IT_TEXT in text
    assert DEFAULT_TEXT not in text
    assert "Einleitung" in text
    assert "private" in cache_control(response), "personalised: never in a shared cache"
    assert varies_by_cookie(response)


def test_known_lead_gets_the_variant_of_its_current_persona(known_client, variant_page, personas):
    page = add_standard_page(variant_page.get_parent(), "zwei-varianten", [variants_block(
        DEFAULT_TEXT, **{str(personas["it"].pk): IT_TEXT, str(personas["ceo"].pk): CEO_TEXT})])
    assert CEO_TEXT not in main_text(known_client.get(page.url))
    assign(known_client.lead, personas["ceo"])
    text = main_text(known_client.get(page.url))
    assert CEO_TEXT in text
    assert IT_TEXT not in text and DEFAULT_TEXT not in text


def test_same_lead_without_personalisation_choice_gets_the_default(known_client, variant_page, demo_site):
    set_choice(known_client, demo_site, personalisation=False)  # statistics only: `.10`
    response = known_client.get(variant_page.url)
    text = main_text(response)
    assert DEFAULT_TEXT in text
    assert IT_TEXT not in text
    assert varies_by_cookie(response)
    assert "private" not in cache_control(response)


def test_anonymous_visitor_gets_the_default(known_client, variant_page):
    response = Client().get(variant_page.url)
    text = main_text(response)
    assert DEFAULT_TEXT in text
    assert IT_TEXT not in text
    assert varies_by_cookie(response), "the page depends on the visitor's cookies"
    assert "private" not in cache_control(response)


def test_visitor_id_of_someone_else_gets_the_default(known_client, variant_page, demo_site):
    set_choice(known_client, demo_site)
    known_client.cookies["inbound_vid"] = "0" * 32
    assert DEFAULT_TEXT in main_text(known_client.get(variant_page.url))


def test_restricted_lead_gets_the_default(known_client, variant_page):
    Lead.objects.filter(pk=known_client.lead.pk).update(restricted_at=known_client.lead.confirmed_at)
    text = main_text(known_client.get(variant_page.url))
    assert DEFAULT_TEXT in text
    assert IT_TEXT not in text


def test_objected_lead_gets_the_default(known_client, variant_page):
    Lead.objects.filter(pk=known_client.lead.pk).update(objected_at=known_client.lead.confirmed_at)
    assert IT_TEXT not in main_text(known_client.get(variant_page.url))


def test_lead_whose_tracking_consent_was_withdrawn_gets_the_default(known_client, variant_page,
                                                                    purposes):  # noqa: F811
    consent.withdraw(known_client.lead, [purposes["tracking"]], channel="preferences")
    text = main_text(known_client.get(variant_page.url))
    assert DEFAULT_TEXT in text
    assert IT_TEXT not in text


def test_lead_without_persona_or_without_matching_variant_gets_the_default(known_client, variant_page,
                                                                           personas):
    assign(known_client.lead, personas["ceo"])  # no CEO variant on the page
    assert DEFAULT_TEXT in main_text(known_client.get(variant_page.url))
    assign(known_client.lead, None)
    assert DEFAULT_TEXT in main_text(known_client.get(variant_page.url))


def test_duplicate_persona_variants_are_refused(personas):
    block = StandardPage.body.field.stream_block.child_blocks["persona_variants"]
    pk = str(personas["it"].pk)
    value = block.to_python({"default": [paragraph("a")], "variants": [
        {"persona": pk, "content": [paragraph("b")]}, {"persona": pk, "content": [paragraph("c")]}]})
    with pytest.raises(StructBlockValidationError) as refused:
        block.clean(value)
    assert "variants" in refused.value.block_errors
    assert 1 in refused.value.block_errors["variants"].block_errors


def test_persona_choices_name_the_site_only_with_several_sites(personas):
    from personas.blocks import persona_choices
    from tests.rights.staff import make_site_b

    assert dict(persona_choices())[str(personas["it"].pk)] == "IT-Leitung"
    Persona.objects.create(site=make_site_b(), name="IT-Leitung", sort_order=0)
    assert dict(persona_choices())[str(personas["it"].pk)].startswith("IT-Leitung (")


# --- queries -------------------------------------------------------------------------------------
def request_queries(client, url, touching=None):
    """The response and its number of queries (only those whose SQL names `touching`, if given)."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content.decode()[:2000]
    return response, len([query for query in queries if touching is None or touching in query["sql"]])


def test_persona_rendering_adds_at_most_one_query(known_client, demo_site, personas, monkeypatch):
    """Anonymous and known visitor on the same page with two variant blocks and a recommendation
    list: the known visitor pays one query more (who they are and their persona), not one per block.

    Recording the page view (pseudonymous tracking, only with statistics consent) is switched off
    here: it is not rendering, and its cost is counted by the tracking tests.
    """
    monkeypatch.setattr("inbound.tracking.record_for_request", lambda *args, **kwargs: None)
    it = str(personas["it"].pk)
    page = add_standard_page(demo_site.root_page, "viele-bloecke", [
        variants_block(DEFAULT_TEXT, **{it: IT_TEXT}),
        variants_block("Zweiter Default", **{it: "Zweite IT-Variante"}),
        recommended_block(),
    ])
    anonymous = Client()
    anonymous.get(page.url)  # warm the caches a running site has (site root paths, banner)
    known_client.get(page.url)

    anonymous_response, anonymous_queries = request_queries(anonymous, page.url)
    known_response, known_queries = request_queries(known_client, page.url)

    assert IT_TEXT in main_text(known_response) and "Zweite IT-Variante" in main_text(known_response)
    assert DEFAULT_TEXT in main_text(anonymous_response)
    assert known_queries - anonymous_queries <= 1, (anonymous_queries, known_queries)
    assert known_queries - anonymous_queries == 1, "the visitor lookup itself is one query"
    assert request_queries(anonymous, page.url, touching="personas_persona")[1] == 0, \
        "picking a variant reads no persona"
    assert request_queries(known_client, page.url, touching="personas_")[1] == 2, \
        "the visitor's persona (joined into the visitor lookup) and the recommendations' tags"


def test_variants_cost_no_query_for_anonymous_visitors(demo_site, personas):
    """However many variants: the page costs what a page with plain text costs."""
    plain = add_standard_page(demo_site.root_page, "schlicht", [paragraph(DEFAULT_TEXT)])
    variants = add_standard_page(demo_site.root_page, "varianten", [variants_block(
        DEFAULT_TEXT, **{str(persona.pk): persona.name for persona in personas.values()})])
    anonymous = Client()
    anonymous.get(plain.url)
    anonymous.get(variants.url)
    assert request_queries(anonymous, variants.url)[1] == request_queries(anonymous, plain.url)[1]


def test_visitor_persona_is_one_query_shared_with_known_lead_id(known_client, rf, demo_site, personas):
    from inbound.known_visitor import known_lead_id

    request = rf.get("/", HTTP_HOST="localhost")
    request.COOKIES.update({key: morsel.value for key, morsel in known_client.cookies.items()})
    assert Site.find_for_request(request) == demo_site  # routing a page request has done so already
    with CaptureQueriesContext(connection) as queries:
        first = visitor_persona(request)
        again = visitor_persona(request)
        lead_id = known_lead_id(request)
    assert first == again == VisitorPersona(lead_id=known_client.lead.pk, persona_id=personas["it"].pk)
    assert lead_id == known_client.lead.pk
    assert len(queries) == 1, [query["sql"] for query in queries]


def test_no_query_without_personalisation_choice_or_with_preview_persona(rf, demo_site):
    request = rf.get("/", HTTP_HOST="localhost")
    with CaptureQueriesContext(connection) as queries:
        assert visitor_persona(request) is None
    preview = rf.get("/", HTTP_HOST="localhost")
    preview.personas_preview_persona_id = 42
    with CaptureQueriesContext(connection) as preview_queries:
        assert visitor_persona(preview) == VisitorPersona(lead_id=None, persona_id=42)
    assert len(preview_queries) == 0
    assert len([q for q in queries if "inbound_lead" in q["sql"]]) == 0


def test_a_wagtail_preview_never_looks_up_the_editors_cookies(known_client, rf, demo_site):
    request = rf.get("/", HTTP_HOST="localhost")
    request.COOKIES.update({key: morsel.value for key, morsel in known_client.cookies.items()})
    request.is_preview = True
    Site.find_for_request(request)
    with CaptureQueriesContext(connection) as queries:
        assert visitor_persona(request) is None
    assert len(queries) == 0


def test_recommendations_are_a_constant_number_of_queries(known_client, demo_site, personas, monkeypatch):
    monkeypatch.setattr("inbound.tracking.record_for_request", lambda *args, **kwargs: None)
    few = add_standard_page(demo_site.root_page, "wenige", [recommended_block(count=2)])
    many = add_standard_page(demo_site.root_page, "viele", [recommended_block(count=12)])
    for number in range(12):
        tag(add_standard_page(demo_site.root_page, f"it-artikel-{number}"), personas["it"])
    known_client.get(few.url)
    known_client.get(many.url)
    few_response, few_queries = request_queries(known_client, few.url)
    many_response, many_queries = request_queries(known_client, many.url)
    assert len(recommended_paths(few_response)) == 2
    assert len(recommended_paths(many_response)) == 12
    assert many_queries == few_queries


# --- recommended next ------------------------------------------------------------------------------
@pytest.fixture
def library(demo_site, personas, gated_page):  # noqa: F811
    """Tagged and untagged content: the gated page (IT, downloaded by the known lead), two IT
    articles, a CEO article, a general article, and the page with the block (IT-tagged too)."""
    home = demo_site.root_page
    tag(gated_page, personas["it"])
    pages = {
        "it_old": add_standard_page(home, "it-alt"),
        "ceo": add_standard_page(home, "chef-artikel"),
        "general": add_standard_page(home, "allgemein"),
        "it_new": add_standard_page(home, "it-neu"),
    }
    tag(pages["it_old"], personas["it"])
    tag(pages["it_new"], personas["it"])
    tag(pages["ceo"], personas["ceo"])
    pages["with_block"] = add_standard_page(home, "weiterlesen", [recommended_block(count=3)])
    tag(pages["with_block"], personas["it"])
    pages["gated"] = gated_page
    return pages


def test_recommends_persona_content_first_newest_first(known_client, library):
    paths = recommended_paths(known_client.get(library["with_block"].url))
    assert paths[:2] == [library["it_new"].url, library["it_old"].url]
    assert len(paths) == 3, "filled up with general content"
    assert paths[2] not in {library["ceo"].url, library["gated"].url, library["with_block"].url}


def test_downloaded_content_is_not_recommended(known_client, library):
    assert LeadEvent.objects.filter(lead=known_client.lead, kind=LeadEvent.DOWNLOAD,
                                    page=library["gated"]).exists()
    block_page = add_standard_page(library["with_block"].get_parent(), "alle-it",
                                   [recommended_block(count=12)])
    paths = recommended_paths(known_client.get(block_page.url))
    assert library["it_new"].url in paths and library["it_old"].url in paths
    assert library["gated"].url not in paths, "the lead already downloaded it"
    assert library["ceo"].url not in paths, "content for another persona"


def test_anonymous_visitor_gets_general_content_only(library, demo_site):
    paths = recommended_paths(Client().get(library["with_block"].url))
    assert paths, "general content as a fallback"
    assert paths[0] == library["general"].url, "newest general content first"
    tagged = {library[key].url for key in ("it_old", "it_new", "ceo", "gated", "with_block")}
    assert not tagged & set(paths)
    legal_and_home = {"/", "/impressum/", "/datenschutz/", "/kontakt/"}
    assert not legal_and_home & set(paths), "only gated and standard pages count as general content"


def test_falls_back_to_general_content_when_nothing_is_left_for_the_persona(known_client, library):
    PagePersonaTag.objects.filter(page__in=[library["it_old"], library["it_new"]]).delete()
    paths = recommended_paths(known_client.get(library["with_block"].url))
    assert paths[0] == library["it_new"].url, "now general content, newest first"
    assert library["gated"].url not in paths and library["ceo"].url not in paths


def test_drafts_and_private_pages_are_not_recommended(known_client, library, personas):
    draft = add_standard_page(library["with_block"].get_parent(), "it-entwurf")
    tag(draft, personas["it"])
    draft.unpublish()
    private = add_standard_page(library["with_block"].get_parent(), "it-intern")
    tag(private, personas["it"])
    PageViewRestriction.objects.create(page=private, restriction_type=PageViewRestriction.LOGIN)
    paths = recommended_paths(known_client.get(library["with_block"].url))
    assert draft.url not in paths and "/it-entwurf/" not in paths
    assert private.url not in paths
    assert paths[:2] == [library["it_new"].url, library["it_old"].url]


def test_recommendations_stay_on_the_site(known_client, library, personas):
    from tests.rights.staff import make_site_b

    site_b = make_site_b()
    other = add_standard_page(site_b.root_page, "anderswo")
    tag(other, personas["it"])
    paths = recommended_paths(known_client.get(library["with_block"].url))
    assert not [path for path in paths if "anderswo" in path]


# --- the editor ---------------------------------------------------------------------------------
def list_block(items):
    """ListBlock form data (like `streamfield()` for a StreamBlock)."""
    data = {str(index): {"value": value, "deleted": "", "order": str(index), "id": ""}
            for index, value in enumerate(items)}
    data["count"] = str(len(items))
    return data


def editor_post(client, parent, variants, slug="neu-mit-varianten"):
    data = nested_form_data({
        "title": "Neu mit Varianten", "slug": slug, "intro": "",
        "body": streamfield([
            ("persona_variants", {
                "default": streamfield([("paragraph", rich_text(f"<p>{DEFAULT_TEXT}</p>"))]),
                "variants": list_block([{
                    "persona": persona_id,
                    "content": streamfield([("paragraph", rich_text(f"<p>{text}</p>"))]),
                } for persona_id, text in variants]),
            }),
            ("recommended_next", {"heading": "", "count": "3"}),
        ]),
        "persona_tags": inline_formset([]),
        "topic_tags": inline_formset([]),
    })
    data["action-publish"] = "action-publish"
    return client.post(f"/admin/pages/add/leadsite/standardpage/{parent.pk}/", data)


def test_editor_adds_persona_variants_and_a_recommendation_list(client, demo_site, known_client, personas):
    from tests.rights.staff import make_user

    editor = Client()
    editor.force_login(make_user("editor", pages=[demo_site.root_page]))
    add_form = editor.get(f"/admin/pages/add/leadsite/standardpage/{demo_site.root_page.pk}/")
    assert add_form.status_code == 200
    assert "IT-Leitung" in add_form.content.decode(), "the personas are offered"

    refused = editor_post(editor, demo_site.root_page, [(personas["it"].pk, IT_TEXT),
                                                        (personas["it"].pk, CEO_TEXT)])
    assert refused.status_code == 200, "one variant per persona"
    assert not StandardPage.objects.filter(slug="neu-mit-varianten").exists()

    response = editor_post(editor, demo_site.root_page, [(personas["it"].pk, IT_TEXT),
                                                         (personas["ceo"].pk, CEO_TEXT)])
    assert response.status_code == 302, response.content.decode()[:3000]
    page = StandardPage.objects.get(slug="neu-mit-varianten")
    assert page.live
    known = main_text(known_client.get(page.url))
    assert IT_TEXT in known and CEO_TEXT not in known
    assert DEFAULT_TEXT in main_text(Client().get(page.url))
