"""The persona panel on the lead detail page (through inbound's hook `inbound_lead_detail_panels`)
and pinning a persona from it: permission, site scope (S1), CSRF, audit log (S2), R3.
"""

from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from wagtail.models import ModelLogEntry

import inbound
from inbound.leads import Lead
from inbound.pages import GatedFormSubmission
from personas.admin_views import PIN_ACTION, UNPIN_ACTION
from personas.assignment import LeadPersona, PersonaChange, recompute
from personas.models import Persona, PersonaRule
from tests.gated.conftest import asset, fresh_cache, gated_page, media_root, purposes  # noqa: F401
from tests.rights.staff import LEAD_PERMISSIONS, make_site_b, make_user

pytestmark = pytest.mark.django_db


def add_lead(site, email, page=None, **answers):
    """A lead; its answers as a submission of `page` (a gated page, as the detail page expects)."""
    lead = Lead.objects.create(site=site, email=email)
    if answers:
        GatedFormSubmission.objects.create(lead=lead, page=page,
                                           form_data={"email": email, "consents": [], **answers})
    return lead


def make_persona(site, name, order, values):
    persona = Persona(site=site, name=name, sort_order=order)
    persona.rules.add(PersonaRule(kind=PersonaRule.ANSWER, field_name="rolle", values=values))
    persona.save()
    return persona


def inspect_url(lead):
    return reverse("leads:inspect", args=[lead.pk])


def pin_url(lead):
    return reverse("personas_lead_pin", args=[lead.pk])


def panel(response):
    assert response.status_code == 200
    return BeautifulSoup(response.content.decode(), "html.parser").select_one("[data-persona-panel]")


@pytest.fixture
def personas(demo_site):
    return (make_persona(demo_site, "IT", 0, "IT-Leitung"),
            make_persona(demo_site, "Marketing", 1, "Marketing"))


@pytest.fixture
def lead(demo_site, personas, gated_page):  # noqa: F811
    lead = add_lead(demo_site, "ines.it@example.org", page=gated_page, rolle="IT-Leitung")
    recompute(Lead.objects.filter(pk=lead.pk))
    return lead


@pytest.fixture
def marketer(demo_site):
    return make_user("marketer", perms=LEAD_PERMISSIONS, pages=[demo_site.root_page])


def test_panel_shows_persona_rule_and_history(client, lead, personas, marketer):
    it, marketing = personas
    client.force_login(marketer)
    section = panel(client.get(inspect_url(lead)))
    assert section.select_one("dd[data-persona]")["data-persona"] == str(it.pk)
    assert section.select_one("dd[data-pinned]")["data-pinned"] == "no"
    assert section.select_one("dd[data-rule]")["data-rule"] == str(it.rules.get().pk)
    assert "IT-Leitung" in section.select_one("dd[data-rule]").get_text()
    [row] = section.select("tr[data-change]")
    assert row["data-manual"] == "no"
    assert [cell.get_text(strip=True) for cell in row.find_all("td")][1:4] == [
        "–", "IT", str(it.rules.get().describe())]
    # The pin form offers the personas of the lead's site, and "no persona".
    options = [option["value"] for option in section.select("form[data-action=persona-pin] option")]
    assert options == ["", str(it.pk), str(marketing.pk)]
    assert section.select_one("form[data-action=persona-pin]")["action"] == pin_url(lead)
    assert section.select_one("form[data-action=persona-unpin]") is None  # not pinned


def test_pin_through_the_admin(client, lead, personas, marketer):
    it, marketing = personas
    client.force_login(marketer)
    response = client.post(pin_url(lead), {"action": "pin", "persona": marketing.pk})
    assert response.status_code == 302 and response["Location"] == inspect_url(lead)

    assignment = LeadPersona.objects.get(lead=lead)
    assert (assignment.persona, assignment.pinned, assignment.rule) == (marketing, True, None)
    change = PersonaChange.objects.filter(lead=lead).latest("pk")
    assert (change.from_persona, change.to_persona, change.manual) == (it, marketing, True)
    [entry] = ModelLogEntry.objects.filter(action=PIN_ACTION)
    assert (entry.user_id, entry.object_id, entry.label) == (marketer.pk, str(lead.pk), f"Lead #{lead.pk}")
    assert entry.data == {"persona": marketing.pk}
    assert lead.email not in str(entry.data) + entry.label

    # Recomputation leaves the pin alone; the panel shows it as pinned, with the manual change.
    recompute(Lead.objects.filter(pk=lead.pk))
    assert LeadPersona.objects.get(lead=lead).persona == marketing
    section = panel(client.get(inspect_url(lead)))
    assert section.select_one("dd[data-pinned]")["data-pinned"] == "yes"
    assert [row["data-manual"] for row in section.select("tr[data-change]")] == ["yes", "no"]
    assert section.select_one("form[data-action=persona-unpin]") is not None


def test_pin_no_persona_then_unpin_lets_the_rules_decide(client, lead, personas, marketer):
    it, _marketing = personas
    client.force_login(marketer)
    assert client.post(pin_url(lead), {"action": "pin", "persona": ""}).status_code == 302
    assignment = LeadPersona.objects.get(lead=lead)
    assert (assignment.persona, assignment.pinned) == (None, True)
    assert PersonaChange.objects.filter(lead=lead, manual=True, to_persona=None, from_persona=it).exists()

    assert client.post(pin_url(lead), {"action": "unpin"}).status_code == 302
    assignment.refresh_from_db()
    assert (assignment.persona, assignment.pinned) == (it, False)
    assert ModelLogEntry.objects.filter(action=UNPIN_ACTION, object_id=str(lead.pk)).count() == 1


def test_bad_requests(client, demo_site, lead, personas, marketer):
    client.force_login(marketer)
    foreign = Persona.objects.create(site=make_site_b(), name="B")
    for data in ({"action": "pin", "persona": foreign.pk}, {"action": "pin", "persona": "x"},
                 {"action": "other"}, {}):
        assert client.post(pin_url(lead), data).status_code == 400, data
    assert client.get(pin_url(lead)).status_code == 405
    assert not LeadPersona.objects.filter(lead=lead, pinned=True).exists()


def test_restricted_lead_gets_no_pinned_persona(client, lead, personas, marketer):
    _it, marketing = personas
    Lead.objects.filter(pk=lead.pk).update(restricted_at=timezone.now())
    client.force_login(marketer)
    assert client.post(pin_url(lead), {"action": "pin", "persona": marketing.pk}).status_code == 302
    assert not LeadPersona.objects.filter(lead=lead, persona=marketing).exists()
    assert not ModelLogEntry.objects.filter(action=PIN_ACTION).exists()


def test_viewer_sees_the_panel_but_cannot_pin(client, demo_site, lead, personas):
    _it, marketing = personas
    viewer = make_user("viewer", perms=["inbound.view_lead"], pages=[demo_site.root_page])
    client.force_login(viewer)
    section = panel(client.get(inspect_url(lead)))
    assert section.select_one("dd[data-persona]") is not None
    assert section.select_one("form") is None
    response = client.post(pin_url(lead), {"action": "pin", "persona": marketing.pk})
    assert response.status_code in (302, 403) and response.get("Location") != inspect_url(lead)
    assert not LeadPersona.objects.filter(lead=lead, pinned=True).exists()


def test_lead_of_another_site_is_a_404(client, demo_site, marketer):
    site_b = make_site_b()
    persona_b = Persona.objects.create(site=site_b, name="B")
    lead_b = add_lead(site_b, "bernd@example.org")
    client.force_login(marketer)
    assert client.post(pin_url(lead_b), {"action": "pin", "persona": persona_b.pk}).status_code == 404
    assert client.post(pin_url(lead_b), {"action": "unpin"}).status_code == 404
    assert not LeadPersona.objects.filter(lead=lead_b).exists()


def test_pin_needs_the_csrf_token(lead, personas, marketer):
    _it, marketing = personas
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(marketer)
    assert browser.post(pin_url(lead), {"action": "pin", "persona": marketing.pk}).status_code == 403
    assert not LeadPersona.objects.filter(lead=lead, pinned=True).exists()


def test_lead_admin_does_not_import_personas():
    """The lead admin works without the personas app: the panel comes in through a hook."""
    folder = Path(inbound.__file__).parent
    for path in (folder / "admin_views.py", folder / "viewsets.py"):
        source = path.read_text(encoding="utf-8")
        assert "from personas" not in source and "import personas" not in source, path
    template = (folder / "templates" / "inbound" / "admin" / "lead_inspect.html").read_text(encoding="utf-8")
    assert "persona" not in template
