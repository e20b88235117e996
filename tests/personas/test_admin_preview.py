"""Persona editor: "Preview matching leads" posts the unsaved form and shows which leads of the
site the persona would match, how many would get it (first match wins), and some of them.
Nothing is saved; it needs persona and lead permissions and the persona's site in scope (S1).
"""

import pytest
from bs4 import BeautifulSoup
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from wagtail.test.utils.form_data import inline_formset, nested_form_data

from inbound.leads import Lead
from inbound.pages import GatedFormSubmission
from personas.assignment import LeadPersona, PersonaChange, pin, recompute
from personas.models import Persona, PersonaRule
from tests.rights.staff import make_site_b, make_user

pytestmark = pytest.mark.django_db

SNIPPET = "wagtailsnippets_personas_persona"
PREVIEW_PERMS = ("personas.add_persona", "personas.change_persona", "personas.view_persona",
                 "inbound.view_lead")


def add_lead(site, email, **answers):
    lead = Lead.objects.create(site=site, email=email)
    if answers:
        GatedFormSubmission.objects.create(lead=lead, page=site.root_page,
                                           form_data={"email": email, "consents": [], **answers})
    return lead


def rule_data(values, field_name="rolle", **extra):
    return {"kind": PersonaRule.ANSWER, "field_name": field_name, "values": values, "min_value": "",
            "max_value": "", "page": "", "topic": "", "min_views": "3", **extra}


def persona_post(site, name, rules, initial=0):
    return nested_form_data({"site": site.pk, "name": name, "description": "", "image": "",
                             "rules": inline_formset(rules, initial=initial)})


def preview_url(persona=None):
    if persona is None:
        return reverse(f"{SNIPPET}:preview_matches")
    return reverse(f"{SNIPPET}:preview_matches_edit", args=[persona.pk])


def counts(response):
    assert response.status_code == 200, response.status_code
    soup = BeautifulSoup(response.content.decode(), "html.parser")
    return {dd["data-count"]: int(dd.get_text(strip=True)) for dd in soup.select("dd[data-count]")}


def sample(response):
    soup = BeautifulSoup(response.content.decode(), "html.parser")
    return {int(row["data-lead"]): (row.find("a").get_text(strip=True), row.find("a")["href"],
                                    row["data-gets-this"] == "yes")
            for row in soup.select("tr[data-lead]")}


@pytest.fixture
def marketer(demo_site):
    return make_user("marketer", perms=PREVIEW_PERMS, pages=[demo_site.root_page])


@pytest.fixture
def dataset(demo_site):
    """An earlier persona "IT" (rolle = IT-Leitung) and six leads of the demo site."""
    it = Persona(site=demo_site, name="IT", sort_order=0)
    it.rules.add(PersonaRule(kind=PersonaRule.ANSWER, field_name="rolle", values="IT-Leitung"))
    it.save()
    leads = {
        "it": add_lead(demo_site, "ines.it@example.org", rolle="IT-Leitung"),
        "marketing": add_lead(demo_site, "mara.marketing@example.org", rolle="Marketing"),
        "marketing2": add_lead(demo_site, "moritz@example.net", rolle="marketing "),
        "sales": add_lead(demo_site, "sven.sales@example.org", rolle="Vertrieb"),
        "restricted": add_lead(demo_site, "rita@example.org", rolle="Marketing"),
        "pinned": add_lead(demo_site, "paul@example.org", rolle="Marketing"),
    }
    Lead.objects.filter(pk=leads["restricted"].pk).update(restricted_at=timezone.now())
    pin(leads["pinned"], it)
    return it, leads


def test_preview_of_a_new_persona_counts_first_match_and_saves_nothing(client, demo_site, marketer, dataset):
    it, leads = dataset
    client.force_login(marketer)
    before = (Persona.objects.count(), PersonaRule.objects.count(), LeadPersona.objects.count(),
              PersonaChange.objects.count())
    data = persona_post(demo_site, "Marketing", [rule_data("Marketing\nIT-Leitung")])

    response = client.post(preview_url(), data)

    # matching: it, marketing, marketing2, pinned; IT comes first for "it"; "pinned" keeps IT.
    assert counts(response) == {"matching": 4, "would-get": 2, "taken-by-earlier": 1,
                                "pinned-elsewhere": 1, "stopped": 1}
    shown = sample(response)
    assert set(shown) == {leads[name].pk for name in ("it", "marketing", "marketing2", "pinned")}
    assert shown[leads["marketing"].pk] == ("m…@example.org", f"/admin/leads/{leads['marketing'].pk}/",
                                            True)
    assert shown[leads["it"].pk][2] is False
    body = response.content.decode()
    for lead in leads.values():
        assert lead.email not in body  # masked only
    assert (Persona.objects.count(), PersonaRule.objects.count(), LeadPersona.objects.count(),
            PersonaChange.objects.count()) == before

    # Saved for real and recomputed, the persona goes to exactly the leads the preview counted.
    response = client.post(reverse(f"{SNIPPET}:add"), data)
    assert response.status_code == 302
    marketing = Persona.objects.get(name="Marketing")
    recompute(Lead.objects.filter(site=demo_site))
    assigned = set(LeadPersona.objects.filter(persona=marketing).values_list("lead_id", flat=True))
    assert assigned == {leads["marketing"].pk, leads["marketing2"].pk}
    assert len(assigned) == counts(client.post(preview_url(marketing), persona_post(
        demo_site, "Marketing", [rule_data("Marketing\nIT-Leitung", id=marketing.rules.get().pk)],
        initial=1)))["would-get"]


def test_preview_of_an_edit_uses_the_posted_rules_and_position(client, demo_site, marketer, dataset):
    it, leads = dataset
    client.force_login(marketer)
    rule = it.rules.get()
    # The posted (unsaved) rules of the first persona now also match marketing answers.
    data = persona_post(demo_site, "IT", [rule_data("IT-Leitung\nMarketing", id=rule.pk)], initial=1)
    result = counts(client.post(preview_url(it), data))
    # it, marketing, marketing2 by the rules, plus "pinned" (pinned to IT already).
    assert result == {"matching": 4, "would-get": 4, "taken-by-earlier": 0, "pinned-elsewhere": 0,
                      "stopped": 1}
    it.refresh_from_db()
    assert it.rules.get().values == "IT-Leitung"  # unchanged in the database


def test_invalid_form_shows_the_errors(client, demo_site, marketer, dataset):
    client.force_login(marketer)
    data = persona_post(demo_site, "", [rule_data("", field_name="")])
    response = client.post(preview_url(), data, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    soup = BeautifulSoup(response.content.decode(), "html.parser")
    assert soup.select_one("[data-preview=invalid]") is not None
    errors = [item.get_text(" ", strip=True) for item in soup.select("[data-preview=invalid] li")]
    assert len(errors) >= 3  # the name, and the rule's form field and values
    assert not soup.select("dd[data-count]")
    assert not Persona.objects.filter(name="").exists()


def test_the_editor_offers_the_preview_button(client, demo_site, marketer, dataset):
    it, _leads = dataset
    client.force_login(marketer)
    for url, target in [(reverse(f"{SNIPPET}:add"), preview_url()),
                        (reverse(f"{SNIPPET}:edit", args=[it.pk]), preview_url(it))]:
        soup = BeautifulSoup(client.get(url).content.decode(), "html.parser")
        button = soup.select_one("button[data-preview-matches]")
        assert button is not None, url
        assert button["formaction"] == target and button["formtarget"] == "_blank"
        assert button.find_parent("form")["id"] == "w-editor-form"


def test_no_button_and_no_preview_without_lead_permission(client, demo_site, dataset):
    it, _leads = dataset
    editor = make_user("editor", perms=["personas.add_persona", "personas.change_persona",
                                        "personas.view_persona"], pages=[demo_site.root_page])
    client.force_login(editor)
    page = client.get(reverse(f"{SNIPPET}:edit", args=[it.pk]))
    assert page.status_code == 200
    assert b"data-preview-matches" not in page.content
    response = client.post(preview_url(), persona_post(demo_site, "X", [rule_data("Marketing")]))
    assert response.status_code in (302, 403)
    assert b"data-count" not in response.content


def test_lead_viewer_without_persona_permission_is_refused(client, demo_site, dataset):
    viewer = make_user("viewer", perms=["inbound.view_lead"], pages=[demo_site.root_page])
    client.force_login(viewer)
    response = client.post(preview_url(), persona_post(demo_site, "X", [rule_data("Marketing")]))
    assert response.status_code in (302, 403)
    assert b"data-count" not in response.content


def test_a_site_outside_the_users_scope_is_a_404(client, demo_site, marketer, dataset):
    site_b = make_site_b()
    add_lead(site_b, "bernd@example.org", rolle="Marketing")
    persona_b = Persona.objects.create(site=site_b, name="B")
    client.force_login(marketer)
    # A new persona posted for site B, and the preview of site B's persona.
    assert client.post(preview_url(), persona_post(site_b, "X", [rule_data("Marketing")])).status_code == 404
    assert client.post(preview_url(persona_b), persona_post(site_b, "B", [])).status_code == 404
    # Moving a persona of the own site to site B in the form does not open site B either.
    it, _leads = dataset
    rule = it.rules.get()
    data = persona_post(site_b, "IT", [rule_data("Marketing", id=rule.pk)], initial=1)
    assert client.post(preview_url(it), data).status_code == 404


def test_get_is_not_allowed(client, marketer, dataset):
    client.force_login(marketer)
    assert client.get(preview_url()).status_code == 405


def test_constant_number_of_queries(client, demo_site, marketer, dataset):
    client.force_login(marketer)
    data = persona_post(demo_site, "Marketing", [rule_data("Marketing")])

    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert counts(client.post(preview_url(), data))["matching"] >= 1
        return len(captured)

    few = queries()
    for index in range(40):
        add_lead(demo_site, f"lead{index}@example.org", rolle="Marketing" if index % 2 else "Vertrieb")
    assert queries() == few
