"""The admin report: per page, views, submissions and confirmations of consenting visitors."""

from datetime import timedelta

import pytest
from bs4 import BeautifulSoup
from django.urls import reverse
from django.utils import timezone
from wagtail.models import Page, Site

from inbound.leads import LeadEvent
from tests.gated.test_admin import make_user
from tests.tracking.conftest import STANDARD_PAGE, choose, confirm_path, submit

pytestmark = pytest.mark.django_db

REPORT = "/admin/reports/inbound-tracking/"
NOTE = "cannot be counted"


def report_rows(response):
    assert response.status_code == 200
    results = BeautifulSoup(response.content.decode(), "html.parser").find(id="listing-results")
    table = results.find("table")
    if table is None:
        return {}
    rows = {}
    for row in table.find("tbody").find_all("tr"):
        cells = [cell.get_text(" ", strip=True) for cell in row.find_all("td")]
        rows[cells[0]] = [int(value) for value in cells[1:]]
    return rows


def add(site, page, kind, visitor="c" * 32, days_ago=0, **fields):
    return LeadEvent.objects.create(site=site, page=page, kind=kind, visitor_id=visitor,
                                    occurred_at=timezone.now() - timedelta(days=days_ago), **fields)


@pytest.fixture
def site_b(db):
    root = Page.get_first_root_node().add_child(instance=Page(title="Site B home", slug="site-b-home"))
    return Site.objects.create(hostname="b.example.test", port=80, root_page=root, site_name="Site B")


@pytest.fixture
def marketer(demo_site):
    return make_user("marketer", perms=["inbound.view_lead"], pages=[demo_site.root_page])


@pytest.fixture
def editor(demo_site):
    return make_user("editor", pages=[demo_site.root_page])


def test_counts_per_page_of_consenting_visitors(client, gated_page, demo_site, site_b, marketer):
    about = Page.objects.get(slug="ueber-uns")
    for visitor in ("1" * 32, "2" * 32, "1" * 32):
        add(demo_site, about, LeadEvent.TRACK_VIEW, visitor)
    add(demo_site, gated_page, LeadEvent.TRACK_VIEW)
    add(demo_site, gated_page, LeadEvent.TRACK_SUBMIT)
    add(demo_site, gated_page, LeadEvent.TRACK_SUBMIT, visitor="d" * 32)
    add(demo_site, gated_page, LeadEvent.TRACK_CONFIRM)
    add(demo_site, gated_page, LeadEvent.TRACK_DOWNLOAD)
    add(demo_site, about, LeadEvent.TRACK_VIEW, days_ago=45)  # outside the default 30 days
    add(demo_site, gated_page, LeadEvent.OPTIN_CONFIRMED, visitor=None)  # a lead's own record
    add(site_b, site_b.root_page, LeadEvent.TRACK_VIEW)  # another site

    client.force_login(marketer)
    response = client.get(REPORT, HTTP_ACCEPT_LANGUAGE="en")
    # page: views, visitors, downloads, submissions, confirmations
    assert report_rows(response) == {
        "Über uns": [3, 2, 0, 0, 0],
        gated_page.title: [1, 1, 1, 2, 1],
    }
    assert NOTE in response.content.decode()

    rows = report_rows(client.get(REPORT, {"period": "90"}, HTTP_ACCEPT_LANGUAGE="en"))
    assert rows["Über uns"] == [4, 3, 0, 0, 0]  # the old view was a third visitor


def test_superuser_sees_every_site_and_may_filter_by_site(client, demo_site, site_b):
    add(demo_site, demo_site.root_page, LeadEvent.TRACK_VIEW)
    add(site_b, site_b.root_page, LeadEvent.TRACK_VIEW)
    client.force_login(make_user("root", superuser=True))
    assert set(report_rows(client.get(REPORT))) == {demo_site.root_page.title, "Site B home"}
    filtered = report_rows(client.get(REPORT, {"site": site_b.pk}))
    assert set(filtered) == {"Site B home"}


def test_site_filter_cannot_open_another_site(client, demo_site, site_b, marketer):
    add(site_b, site_b.root_page, LeadEvent.TRACK_VIEW)
    client.force_login(marketer)
    assert "Site B home" not in client.get(REPORT, {"site": site_b.pk}).content.decode()


def test_report_needs_the_lead_permission(client, demo_site, editor, marketer):
    add(demo_site, demo_site.root_page, LeadEvent.TRACK_VIEW)
    client.force_login(editor)
    response = client.get(REPORT)
    assert response.status_code == 302
    assert REPORT not in client.get(reverse("wagtailadmin_home")).content.decode()
    client.force_login(marketer)
    assert REPORT in client.get(reverse("wagtailadmin_home")).content.decode()
    client.logout()
    assert client.get(REPORT).status_code == 302


def test_report_counts_a_real_journey(client, gated_page, mailoutbox, on_commit, django_user_model):
    visitor = client
    choose(visitor, "accept")
    visitor.get(STANDARD_PAGE)
    visitor.get(gated_page.url)
    with on_commit():
        submit(visitor, gated_page)
    with on_commit():
        visitor.post(confirm_path(mailoutbox[0]))
    visitor.cookies.clear()
    visitor.get(gated_page.url)  # a visitor without a choice: not counted

    client.force_login(make_user("root", superuser=True))
    rows = report_rows(client.get(REPORT))
    assert rows[gated_page.title] == [1, 1, 0, 1, 1]
    assert rows["Über uns"] == [1, 1, 0, 0, 0]
