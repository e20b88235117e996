"""Progressive profiling (issue 7): a known visitor is not asked again what they answered.

The visitor of these tests accepted statistics and personalisation in the cookie banner (cookie
`inbound_consent=<banner version>.11`, visitor id `inbound_vid`), then asked for a first
download with tracking consent and confirmed it: the confirmation links the visitor id to the
lead (`inbound.tracking.after_confirm`), which makes the visitor *known*
(`inbound.known_visitor`).
"""

import pytest
from bs4 import BeautifulSoup
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from wagtail.test.utils.form_data import inline_formset, nested_form_data, rich_text, streamfield

from inbound import form_cache, profiling, tracking
from inbound.cookie_banner import banner_for_site
from inbound.leads import Lead, LeadEvent
from inbound.pages import GatedFormField, GatedFormSubmission, GatedPage
from personas.assignment import load_facts
from tests.gated.conftest import confirm_path, submit

pytestmark = pytest.mark.django_db

VISITOR = "0123456789abcdef0123456789abcdef"
EMAIL = "max.muster@example.org"
ASK_ONCE = ["firma", "rolle", "mitarbeiterzahl"]


def make_gated_page(site, asset, purposes, slug, limit=0, required=()):
    """A published gated page with three ask-once questions and one normal question."""
    page = GatedPage(title=f"Download {slug}", slug=slug, asset=asset, progressive_questions=limit,
                     thank_you_text="<p>Danke!</p>", confirmation_text="<p>Bitte sehr.</p>")
    site.root_page.add_child(instance=page)
    page.purposes.set(purposes.values())
    for order, label in enumerate(["Firma", "Rolle", "Mitarbeiterzahl"]):
        page.form_fields.add(GatedFormField(sort_order=order, label=label, field_type="singleline",
                                            required=label.lower() in required, ask_once=True))
    page.form_fields.add(GatedFormField(sort_order=9, label="Nachricht", field_type="multiline",
                                        required=False))
    page.save_revision().publish()
    page.refresh_from_db()
    return page


@pytest.fixture
def form_one(demo_site, asset, purposes):
    return make_gated_page(demo_site, asset, purposes, "whitepaper-eins")


@pytest.fixture
def form_two(demo_site, asset, purposes):
    return make_gated_page(demo_site, asset, purposes, "whitepaper-zwei", limit=1)


def set_choice(client, site, personalisation=True):
    client.cookies["inbound_consent"] = f"{banner_for_site(site).version}.1{int(personalisation)}"
    client.cookies["inbound_vid"] = VISITOR


def sign_up(client, page, mailoutbox, on_commit, **answers):
    """Submit `page` with tracking consent and confirm the address: the lead, now linked."""
    with on_commit():
        response = submit(client, page, email=EMAIL, consent_tracking="on", **answers)
    assert response.status_code == 200, response.content.decode()[:2000]
    with on_commit():
        assert client.post(confirm_path(mailoutbox[-1])).status_code == 200
    lead = Lead.objects.get(email=EMAIL)
    assert LeadEvent.objects.filter(kind=LeadEvent.TRACK_LINKED, lead=lead, visitor_id=VISITOR).exists()
    return lead


@pytest.fixture
def known_client(client, demo_site, form_one, mailoutbox, on_commit):
    """A visitor with personalisation consent who answered Firma and Rolle on form one."""
    set_choice(client, demo_site)
    client.lead = sign_up(client, form_one, mailoutbox, on_commit, firma="ACME", rolle="CTO")
    return client


def question_names(response):
    """The names of the extra questions in the page's form, in order (no e-mail, consents,
    honeypot or CSRF token)."""
    assert response.status_code == 200, response.content.decode()[:2000]
    form = BeautifulSoup(response.content.decode(), "html.parser").find("form", attrs={"method": "post"})
    names = [tag["name"] for tag in form.find_all(["input", "textarea", "select"]) if tag.get("name")]
    return [name for name in names
            if name not in ("csrfmiddlewaretoken", "email", "website") and not name.startswith("consent_")]


ALL_QUESTIONS = ["firma", "rolle", "mitarbeiterzahl", "nachricht"]


# --- the acceptance journey ------------------------------------------------------------------

def test_answered_questions_are_not_asked_again_on_the_next_form(known_client, form_one, form_two):
    """Issue 7 acceptance: one visitor over two forms."""
    lead = known_client.lead
    assert question_names(known_client.get(form_two.url)) == ["mitarbeiterzahl", "nachricht"]

    response = submit(known_client, form_two, email=EMAIL, mitarbeiterzahl="50-249")
    assert response.status_code == 200, response.content.decode()[:2000]

    latest = GatedFormSubmission.objects.filter(lead=lead).latest("pk")
    assert latest.page_id == form_two.pk
    assert set(latest.form_data) == {"email", "mitarbeiterzahl", "nachricht", "consents"}
    answers = load_facts([lead.pk])[lead.pk].answers
    assert {name: answers[name] for name in ASK_ONCE} == {
        "firma": "ACME", "rolle": "CTO", "mitarbeiterzahl": "50-249"}

    # Nothing left to ask once: the normal question, the e-mail and the consents remain.
    assert question_names(known_client.get(form_two.url)) == ["nachricht"]
    assert question_names(known_client.get(form_one.url)) == ["nachricht"]
    html = known_client.get(form_two.url).content.decode()
    assert 'name="email"' in html and 'name="consent_email_nurture"' in html


def test_the_email_address_is_never_prefilled(known_client, form_two):
    html = known_client.get(form_two.url).content.decode()
    email = BeautifulSoup(html, "html.parser").find("input", attrs={"name": "email"})
    assert not email.get("value")
    assert EMAIL not in html.lower()


def test_the_limit_picks_the_next_unanswered_questions_in_order(client, demo_site, asset, purposes,
                                                               form_one, mailoutbox, on_commit):
    set_choice(client, demo_site)
    sign_up(client, form_one, mailoutbox, on_commit, firma="ACME")
    one_at_a_time = make_gated_page(demo_site, asset, purposes, "eins-pro-besuch", limit=1)
    two_at_a_time = make_gated_page(demo_site, asset, purposes, "zwei-pro-besuch", limit=2)
    assert question_names(client.get(one_at_a_time.url)) == ["rolle", "nachricht"]
    assert question_names(client.get(two_at_a_time.url)) == ["rolle", "mitarbeiterzahl", "nachricht"]
    assert question_names(client.get(form_one.url)) == ["rolle", "mitarbeiterzahl", "nachricht"]


# --- everyone else sees the whole form -------------------------------------------------------

def test_an_anonymous_visitor_sees_the_whole_form(known_client, form_two):
    assert question_names(Client().get(form_two.url)) == ALL_QUESTIONS


def test_without_personalisation_the_same_visitor_sees_the_whole_form(known_client, demo_site, form_two):
    set_choice(known_client, demo_site, personalisation=False)  # ".10": statistics only
    assert question_names(known_client.get(form_two.url)) == ALL_QUESTIONS


def test_another_browser_with_an_unlinked_visitor_id_sees_the_whole_form(known_client, demo_site,
                                                                        form_two):
    other = Client()
    set_choice(other, demo_site)
    other.cookies["inbound_vid"] = "f" * 32
    assert question_names(other.get(form_two.url)) == ALL_QUESTIONS


def test_an_objection_ends_progressive_profiling(known_client, form_two):
    Lead.objects.filter(pk=known_client.lead.pk).update(objected_at=known_client.lead.created_at)
    assert question_names(known_client.get(form_two.url)) == ALL_QUESTIONS


def test_a_preview_shows_the_editor_the_whole_form(known_client, demo_site, form_two, rf):
    request = rf.get(form_two.url)
    request.COOKIES.update({name: morsel.value for name, morsel in known_client.cookies.items()})
    assert form_two.known_lead_id(request) == known_client.lead.pk
    request = rf.get(form_two.url)
    request.COOKIES.update({name: morsel.value for name, morsel in known_client.cookies.items()})
    request.is_preview = True
    assert list(form_two.get_form(request=request).fields)[1:5] == ALL_QUESTIONS


# --- caching ---------------------------------------------------------------------------------

def test_a_known_visitors_page_is_private_and_never_cached(known_client, form_two, monkeypatch):
    stored = []
    monkeypatch.setattr(form_cache, "store", lambda key, html: stored.append(key))
    response = known_client.get(form_two.url)
    assert question_names(response) == ["mitarbeiterzahl", "nachricht"]
    assert "private" in response["Cache-Control"]
    assert "Cookie" in response["Vary"]
    assert stored == []


def test_the_cached_form_is_never_shown_to_a_known_visitor(known_client, form_two):
    anonymous = Client()
    assert question_names(anonymous.get(form_two.url)) == ALL_QUESTIONS  # fills the cache
    assert question_names(known_client.get(form_two.url)) == ["mitarbeiterzahl", "nachricht"]
    assert question_names(anonymous.get(form_two.url)) == ALL_QUESTIONS  # not the known one's
    assert "private" not in anonymous.get(form_two.url).get("Cache-Control", "")


def test_a_known_visitors_get_costs_two_queries_more_than_building_the_form(known_client, demo_site,
                                                                          form_two, monkeypatch):
    """The known lead (one query, `known_visitor`) and its answers (one, `profiling`). Compared
    with the same browser choosing statistics only (its form built on a cache miss); the page
    view tracking after the response (which links events with personalisation) is left out."""
    monkeypatch.setattr(tracking, "after_response", lambda request, response: None)
    known_client.get(form_two.url)
    set_choice(known_client, demo_site, personalisation=False)
    known_client.get(form_two.url)
    form_cache.bump_generation()
    with CaptureQueriesContext(connection) as built:
        assert question_names(known_client.get(form_two.url)) == ALL_QUESTIONS
    set_choice(known_client, demo_site)
    with CaptureQueriesContext(connection) as known:
        assert question_names(known_client.get(form_two.url)) == ["mitarbeiterzahl", "nachricht"]
    assert len(known) <= len(built) + 2, [q["sql"][:200] for q in known.captured_queries]


# --- submitting the shortened form -----------------------------------------------------------

def test_a_hidden_required_question_does_not_block_the_known_visitor(known_client, demo_site, asset,
                                                                    purposes):
    strict = make_gated_page(demo_site, asset, purposes, "streng", limit=1, required=("firma", "rolle"))
    assert question_names(known_client.get(strict.url)) == ["mitarbeiterzahl", "nachricht"]
    assert submit(known_client, strict, email=EMAIL).status_code == 200
    assert submit(Client(), strict, email="jemand@example.org").status_code == 400, "others must answer"


def test_a_posted_value_for_a_hidden_question_is_ignored(known_client, form_two):
    """A hostile (or stale) POST may add values for questions the form did not ask: they are not
    fields of the form the POST is validated with, so they are neither stored nor do they
    overwrite the profile."""
    lead = known_client.lead
    response = submit(known_client, form_two, email=EMAIL, firma="Evil Corp", rolle="<script>",
                      mitarbeiterzahl="10-49")
    assert response.status_code == 200
    latest = GatedFormSubmission.objects.filter(lead=lead).latest("pk")
    assert "firma" not in latest.form_data and "rolle" not in latest.form_data
    answers = load_facts([lead.pk])[lead.pk].answers
    assert (answers["firma"], answers["rolle"], answers["mitarbeiterzahl"]) == ("ACME", "CTO", "10-49")


def test_an_invalid_post_shows_the_shortened_form_again(known_client, form_two):
    response = submit(known_client, form_two, email="kaputt", mitarbeiterzahl="10-49")
    assert response.status_code == 400
    form = BeautifulSoup(response.content.decode(), "html.parser").find("form", attrs={"method": "post"})
    assert form.find("input", attrs={"name": "mitarbeiterzahl"})["value"] == "10-49"
    assert not form.find("input", attrs={"name": "firma"})
    assert "private" in response["Cache-Control"]


# --- the pure functions ----------------------------------------------------------------------

def test_answered_field_names_counts_non_empty_answers_of_the_site(known_client, form_two, demo_site,
                                                                   django_assert_num_queries):
    lead = known_client.lead
    GatedFormSubmission.objects.create(page=form_two, lead=lead, form_data={
        "email": EMAIL, "mitarbeiterzahl": "  ", "nachricht": "", "newsletter": False,
        "themen": [], "consents": ["tracking"]})
    with django_assert_num_queries(1):
        answered = profiling.answered_field_names(lead.pk, demo_site)
    assert answered == {"firma", "rolle"}


def test_fields_to_ask_keeps_order_normal_fields_and_the_limit():
    def field(name, ask_once):
        return GatedFormField(label=name, clean_name=name, ask_once=ask_once)

    fields = [field("a", True), field("normal", False), field("b", True), field("c", True)]
    names = lambda chosen: [f.clean_name for f in chosen]  # noqa: E731
    assert names(profiling.fields_to_ask(fields, set(), 0)) == ["a", "normal", "b", "c"]
    assert names(profiling.fields_to_ask(fields, {"a"}, 0)) == ["normal", "b", "c"]
    assert names(profiling.fields_to_ask(fields, {"a"}, 1)) == ["normal", "b"]
    assert names(profiling.fields_to_ask(fields, {"a", "b", "c", "normal"}, 1)) == ["normal"]


# --- the admin -------------------------------------------------------------------------------

@pytest.fixture
def admin_client(db):
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("admin", "admin@example.org", "pw"))
    return client


def test_editors_set_ask_once_and_the_number_of_new_questions(admin_client, demo_site, asset, purposes):
    url = f"/admin/pages/add/inbound/gatedpage/{demo_site.root_page_id}/"
    html = admin_client.get(url).content.decode()
    assert 'name="form_fields-__prefix__-ask_once"' in html
    assert 'name="progressive_questions"' in html
    field = {"field_type": "singleline", "required": False, "choices": "", "default_value": "",
             "help_text": ""}
    data = nested_form_data({
        "title": "Profil-Checkliste", "slug": "profil-checkliste", "kind": "checklist",
        "intro": streamfield([]), "asset": asset.pk, "coupling_notice": "", "progressive_questions": 2,
        "thank_you_text": rich_text("<p>Danke</p>"), "confirmation_text": rich_text("<p>Ok</p>"),
        "form_fields": inline_formset([{**field, "label": "Firma", "ask_once": True},
                                       {**field, "label": "Nachricht"}]),
        "persona_tags": inline_formset([]), "topic_tags": inline_formset([]),
        "action-publish": "action-publish",
    })
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    page = GatedPage.objects.get(slug="profil-checkliste")
    assert page.progressive_questions == 2
    assert [(f.label, f.ask_once) for f in page.form_fields.all()] == [("Firma", True), ("Nachricht", False)]
