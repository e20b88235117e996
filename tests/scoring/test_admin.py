"""Scoring rules are per site in the admin: a marketer sees, edits and creates only the rules of
their own sites."""

import pytest

from inbound.scoring.models import ScoringRule
from tests.rights.staff import make_site_b, make_user

from .conftest import rule

pytestmark = pytest.mark.django_db

URL = "/admin/snippets/inbound/scoringrule/"
PERMS = ["inbound.view_scoringrule", "inbound.change_scoringrule", "inbound.add_scoringrule",
         "inbound.delete_scoringrule"]


@pytest.fixture
def marketer(client, site):
    client.force_login(make_user("marketer", perms=PERMS, pages=[site.root_page]))
    return client


def test_marketer_sees_and_edits_only_own_sites_rules(marketer, site):
    own = rule(site, ScoringRule.CONFIRMED, 10, name="Eigene Regel")
    foreign = rule(make_site_b(), ScoringRule.CONFIRMED, 10, name="Fremde Regel")

    listing = marketer.get(URL).content.decode()
    assert "Eigene Regel" in listing and "Fremde Regel" not in listing
    assert marketer.get(f"{URL}edit/{own.pk}/").status_code == 200
    response = marketer.get(f"{URL}edit/{foreign.pk}/")
    assert response.status_code == 404 and "Fremde Regel" not in response.content.decode()
    assert marketer.post(f"{URL}delete/{foreign.pk}/").status_code == 404
    assert ScoringRule.objects.filter(pk=foreign.pk).exists()


def test_add_form_offers_only_own_sites_and_saves_a_valid_rule(marketer, site):
    site_b = make_site_b()
    form = marketer.get(f"{URL}add/").content.decode()
    assert f'<option value="{site.pk}"' in form and f'<option value="{site_b.pk}"' not in form

    response = marketer.post(f"{URL}add/", {"site": site_b.pk, "name": "Fremd", "kind": "confirmed",
                                             "points": "5"})
    assert response.status_code == 200 and not ScoringRule.objects.exists()

    response = marketer.post(f"{URL}add/", {"site": site.pk, "name": "Mittelstand", "kind": "number_range",
                                             "points": "10", "field_name": "mitarbeiter",
                                             "min_value": "50", "active": "on"})
    assert response.status_code == 302
    saved = ScoringRule.objects.get()
    assert (saved.site, saved.kind, saved.points, saved.sub_score) == (site, "number_range", 10, "fit")


def test_rule_for_a_gated_page_of_another_site_is_refused(marketer, site, gated_page, asset):
    from tests.rights.staff import make_site_b_lead

    _lead, foreign_page = make_site_b_lead(make_site_b(), asset)
    data = {"site": site.pk, "kind": "page_download", "points": "5", "active": "on"}
    response = marketer.post(f"{URL}add/", {**data, "page": foreign_page.pk})
    assert response.status_code == 200 and not ScoringRule.objects.exists()
    assert "Choose a gated page of the rule" in response.content.decode()
    assert marketer.post(f"{URL}add/", {**data, "page": gated_page.pk}).status_code == 302
    assert ScoringRule.objects.get().page_id == gated_page.pk


def test_settings_offer_only_the_sites_personas(client, site):
    from inbound.scoring.models import ScoringSettings
    from personas.models import Persona

    own = Persona.objects.create(site=site, name="Eigene Persona")
    foreign = Persona.objects.create(site=make_site_b(), name="Fremde Persona")
    client.force_login(make_user("admin", superuser=True))
    url = f"/admin/settings/inbound/scoringsettings/{site.pk}/"
    page = client.get(url).content.decode()
    assert "Eigene Persona" in page and "Fremde Persona" not in page
    assert f'name="mql_personas" value="{foreign.pk}"' not in page
    response = client.post(url, {"mql_threshold": "60", "mql_personas": [own.pk]})
    assert response.status_code == 302
    settings = ScoringSettings.for_site(site)
    assert settings.mql_threshold == 60 and list(settings.mql_personas.all()) == [own]
