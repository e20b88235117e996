"""The persona report: leads per persona, confirmation rate, live tagged content, the content-gap
line and the CSV export; site scope (S1), permissions and a constant number of queries.
"""

import csv
import io

import pytest
from bs4 import BeautifulSoup
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from wagtail.models import Page

from inbound.leads import Lead
from personas.assignment import LeadPersona
from personas.models import PagePersonaTag, Persona
from personas.report import parse_min_content
from tests.rights.staff import make_site_b, make_user

pytestmark = pytest.mark.django_db

REPORT = "/admin/reports/personas/"
NO_PERSONA = "(no persona)"


def rows_of(response):
    """{(site, persona): [leads, confirmed, rate, content]} from the report table."""
    assert response.status_code == 200, response.status_code
    results = BeautifulSoup(response.content.decode(), "html.parser").find(id="listing-results")
    rows = {}
    for row in results.find("table").find("tbody").find_all("tr"):
        site, persona, *values = [cell.get_text(" ", strip=True) for cell in row.find_all("td")]
        rows[(site, persona)] = values
    return rows


def gaps_of(response):
    soup = BeautifulSoup(response.content.decode(), "html.parser")
    return [int(span["data-gap-persona"]) for span in soup.select("[data-gap-persona]")]


def add_lead(site, email, persona=None, confirmed=False, assignment=True):
    lead = Lead.objects.create(site=site, email=email, confirmed_at=timezone.now() if confirmed else None)
    if assignment:
        LeadPersona.objects.create(lead=lead, persona=persona)
    return lead


def tag(page, persona):
    PagePersonaTag.objects.create(page=page, persona=persona)


def draft_page(parent, slug):
    return parent.add_child(instance=Page(title=slug, slug=slug, live=False))


@pytest.fixture
def dataset(demo_site):
    """Three personas of the demo site with leads and tagged content."""
    a = Persona.objects.create(site=demo_site, name="Anna IT", sort_order=0)
    b = Persona.objects.create(site=demo_site, name="Bernd GF", sort_order=1)
    c = Persona.objects.create(site=demo_site, name="Carla Marketing", sort_order=2)
    add_lead(demo_site, "a1@example.org", a, confirmed=True)
    add_lead(demo_site, "a2@example.org", a, confirmed=True)
    add_lead(demo_site, "a3@example.org", a)
    add_lead(demo_site, "b1@example.org", b)
    add_lead(demo_site, "n1@example.org", None, confirmed=True)  # a row without a persona
    add_lead(demo_site, "n2@example.org", assignment=False)  # never assigned
    root = demo_site.root_page
    live = [root, *root.get_children().live()[:2]]
    assert len(live) == 3
    for page in live:
        tag(page, a)
    tag(live[0], b)
    tag(draft_page(root, "entwurf"), b)  # not live: does not count
    return a, b, c


@pytest.fixture
def marketer(demo_site):
    return make_user("marketer", perms=["personas.view_persona", "inbound.view_lead"],
                     pages=[demo_site.root_page])


def test_numbers_per_persona(client, demo_site, dataset, marketer):
    a, b, c = dataset
    client.force_login(marketer)
    response = client.get(REPORT)
    site = demo_site.site_name
    assert rows_of(response) == {
        (site, "Anna IT"): ["3", "2", "66.7 %", "3"],
        (site, "Bernd GF"): ["1", "0", "0.0 %", "1"],
        (site, "Carla Marketing"): ["0", "0", "–", "0"],
        (site, NO_PERSONA): ["2", "1", "50.0 %", "–"],
    }
    assert list(rows_of(response)) == [(site, name) for name in
                                       ("Anna IT", "Bernd GF", "Carla Marketing", NO_PERSONA)]
    assert gaps_of(response) == [b.pk, c.pk]  # fewer than 3 by default
    assert gaps_of(client.get(REPORT, {"min_content": "1"})) == [c.pk]
    assert gaps_of(client.get(REPORT, {"min_content": "0"})) == []
    assert gaps_of(client.get(REPORT, {"min_content": "4"})) == [a.pk, b.pk, c.pk]
    for invalid in ("-1", "1001", "drei"):
        assert gaps_of(client.get(REPORT, {"min_content": invalid})) == [b.pk, c.pk], invalid


def test_parse_min_content():
    assert [parse_min_content(value) for value in ("0", " 7 ", "1000", "1001", "-2", "x", None, "2.5")] == [
        0, 7, 1000, 3, 3, 3, 3, 3]


def test_csv_export_has_the_same_rows(client, demo_site, dataset, marketer):
    client.force_login(marketer)
    response = client.get(REPORT, {"export": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(response.content.decode())))
    site = demo_site.site_name
    assert lines == [
        ["Site", "Persona", "Leads", "Confirmed", "Confirmation rate (%)", "Live tagged content"],
        [site, "Anna IT", "3", "2", "66.7", "3"],
        [site, "Bernd GF", "1", "0", "0.0", "1"],
        [site, "Carla Marketing", "0", "0", "", "0"],
        [site, NO_PERSONA, "2", "1", "50.0", ""],
    ]


def test_site_limited_user_sees_only_their_site(client, demo_site, dataset):
    site_b = make_site_b()
    persona_b = Persona.objects.create(site=site_b, name="Persona B")
    add_lead(site_b, "b-lead@example.org", persona_b, confirmed=True)
    marketer = make_user("marketer", perms=["personas.view_persona", "inbound.view_lead"],
                         pages=[demo_site.root_page])
    client.force_login(marketer)
    for params in ({}, {"site": site_b.pk}, {"export": "csv", "site": site_b.pk}):
        response = client.get(REPORT, params)
        body = response.content.decode()
        assert "Persona B" not in body and site_b.site_name not in body, params
    assert {site for site, _persona in rows_of(client.get(REPORT))} == {demo_site.site_name}

    # Someone who may see both sites gets both, and may filter by site.
    admin = make_user("admin", superuser=True)
    client.force_login(admin)
    assert (site_b.site_name, "Persona B") in rows_of(client.get(REPORT))
    only_b = rows_of(client.get(REPORT, {"site": site_b.pk}))
    assert only_b == {(site_b.site_name, "Persona B"): ["1", "1", "100.0 %", "0"],
                      (site_b.site_name, NO_PERSONA): ["0", "0", "–", "–"]}


def test_permissions_and_menu(client, demo_site, dataset, marketer):
    client.force_login(marketer)
    assert REPORT in client.get("/admin/").content.decode()
    for perms in (["inbound.view_lead"], ["personas.view_persona"]):
        user = make_user("user-" + "-".join(p.split(".")[1] for p in perms), perms=perms,
                         pages=[demo_site.root_page])
        client.force_login(user)
        assert REPORT not in client.get("/admin/").content.decode(), perms
        response = client.get(REPORT)
        assert response.status_code in (302, 403) and b"Anna IT" not in response.content, perms
        assert b"Anna IT" not in client.get(REPORT, {"export": "csv"}).content, perms


def test_constant_number_of_queries(client, demo_site, marketer):
    client.force_login(marketer)
    pages = list(demo_site.root_page.get_children().live())

    def grow(count):
        for index in range(Persona.objects.count(), count):
            persona = Persona.objects.create(site=demo_site, name=f"P{index}", sort_order=index)
            for lead_index in range(3):
                add_lead(demo_site, f"p{index}-{lead_index}@example.org", persona, confirmed=lead_index == 0)
            for page in pages:
                tag(page, persona)

    def queries(**params):
        with CaptureQueriesContext(connection) as captured:
            response = client.get(REPORT, params)
            assert response.status_code == 200
        return len(captured), response

    grow(3)
    few, response = queries()
    assert len(rows_of(response)) == 4
    grow(10)
    many, response = queries()
    assert len(rows_of(response)) == 11
    assert rows_of(response)[(demo_site.site_name, "P9")] == ["3", "1", "33.3 %", str(len(pages))]
    assert many == few
