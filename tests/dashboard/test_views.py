"""The funnel report, its CSV exports and the dashboard panel: access, scope, content, queries."""

import csv
import io
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from bs4 import BeautifulSoup
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from wagtail.models import Page

from inbound.scoring.models import MQL, LeadScore, ScoringSettings
from inbound.scoring.report_views import csv_safe
from tests.rights.staff import make_user

from .conftest import confirmation, gated, lead, populate, stage, submission, view

pytestmark = pytest.mark.django_db

REPORT = reverse("inbound_funnel_report")
HOSTILE_TITLE = '=HYPERLINK("http://evil.example/","Klick")'


def csv_url(table):
    return reverse("inbound_funnel_report_csv", args=[table])


def read_csv(response):
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def funnel_counts(response):
    assert response.status_code == 200
    soup = BeautifulSoup(response.content.decode(), "html.parser")
    table = soup.find(attrs={"data-funnel": True}) or soup.find(attrs={"data-funnel-panel": True})
    rows = table.find_all("tr", attrs={"data-step": True})
    return {row["data-step"]: int(row["data-count"]) for row in rows}


def all_steps(count):
    return dict.fromkeys(["visitors", "submissions", "confirmations", "mqls", "sqls"], count)


@pytest.fixture
def page(site, asset):
    return gated(site, "E-Book A", asset, "a")


@pytest.fixture
def journey(site, site_b, page, asset):
    """One lead all the way on the demo site, two on site B."""
    at = timezone.now() - timedelta(days=2)
    populate(site, page, 1, prefix="a")
    populate(site_b, gated(site_b, "Fremdes E-Book", asset, "fremd"), 2, prefix="b")
    return at


def test_report_shows_the_funnel_charts_and_tables(client, site, marketer, journey):
    client.force_login(marketer)
    response = client.get(REPORT)
    assert funnel_counts(response) == all_steps(1)
    soup = BeautifulSoup(response.content.decode(), "html.parser")
    for marker in ("data-funnel-chart", "data-distribution-chart"):
        ET.fromstring(str(soup.find(attrs={marker: True}).find("svg")))
    assert soup.find(attrs={"data-top": "top-confirmations"}).find("tr", attrs={"data-count": "1"})
    assert {link["data-csv"] for link in soup.find_all("a", attrs={"data-csv": True})} == {
        "funnel", "distribution", "top-confirmations", "top-mqls"}
    assert not [tag for tag in soup.find_all("script", src=True) if "//" in tag["src"]]  # nothing from a CDN


def test_marketer_sees_only_their_site_and_another_site_is_a_404(client, site, site_b, marketer, journey):
    client.force_login(marketer)
    response = client.get(REPORT)
    assert "Site B GmbH" not in response.content.decode()
    assert not BeautifulSoup(response.content.decode(), "html.parser").find("select", attrs={"name": "site"})
    assert client.get(REPORT, {"site": site_b.pk}).status_code == 404
    assert client.get(REPORT, {"site": "nonsense"}).status_code == 404
    for table in ("funnel", "distribution", "top-confirmations", "top-mqls"):
        assert client.get(csv_url(table), {"site": site_b.pk}).status_code == 404
    assert funnel_counts(client.get(REPORT, {"site": site.pk, "period": "7"}))["sqls"] == 1


def test_superuser_chooses_the_site(client, site, site_b, journey):
    client.force_login(make_user("root", superuser=True))
    response = client.get(REPORT, {"site": site_b.pk})
    assert funnel_counts(response) == all_steps(2)
    select = BeautifulSoup(response.content.decode(), "html.parser").find("select", attrs={"name": "site"})
    assert {option["value"] for option in select.find_all("option")} == {str(site.pk), str(site_b.pk)}


def test_permission_is_needed(client, site):
    client.force_login(make_user("editor", pages=[site.root_page]))
    assert client.get(REPORT).status_code == 302
    assert client.get(csv_url("funnel")).status_code == 302
    home = client.get(reverse("wagtailadmin_home")).content.decode()
    assert REPORT not in home and "inbound-funnel" not in home
    client.logout()
    assert client.get(REPORT).status_code == 302


def test_menu_item_and_dashboard_panel(client, site, site_b, marketer, journey):
    client.force_login(marketer)
    home = client.get(reverse("wagtailadmin_home"))
    assert REPORT in home.content.decode()
    assert funnel_counts(home) == all_steps(1)
    soup = BeautifulSoup(home.content.decode(), "html.parser")
    ET.fromstring(str(soup.find(attrs={"data-funnel-panel-chart": True}).find("svg")))
    client.force_login(make_user("root", superuser=True))
    assert funnel_counts(client.get(reverse("wagtailadmin_home")))["visitors"] == 3  # both sites


def test_csv_exports(client, site, page, marketer, journey):
    Page.objects.filter(pk=page.pk).update(title=HOSTILE_TITLE, draft_title=HOSTILE_TITLE)
    ScoringSettings.objects.create(site=site, mql_threshold=40)
    LeadScore.objects.create(lead=lead(site, "minus@example.org"), total=-3)
    client.force_login(marketer)

    funnel = read_csv(client.get(csv_url("funnel"), {"period": "7"}))
    assert funnel[0][3:] == ["Step", "Count", "Rate from the step before (%)"]
    assert [(row[3], row[4], row[5]) for row in funnel[1:]] == [
        ("Visitors with consent", "1", ""), ("Submissions", "1", "100.0"), ("Confirmed", "1", "100.0"),
        ("MQL", "1", "100.0"), ("SQL", "1", "100.0")]
    assert {row[0] for row in funnel[1:]} == {site.site_name or site.hostname}

    top = read_csv(client.get(csv_url("top-confirmations")))
    assert top[1][3:] == [str(page.pk), "'" + HOSTILE_TITLE, "1"]
    top_mqls = read_csv(client.get(csv_url("top-mqls")))
    assert top_mqls[1][4] == "'" + HOSTILE_TITLE

    distribution = read_csv(client.get(csv_url("distribution")))
    assert distribution[0][1:] == ["Score from", "Score below", "Leads", "MQL threshold"]
    assert distribution[1][1:] == ["-5", "0", "1", "40"]  # a negative number stays a number
    response = client.get(csv_url("funnel"))
    assert response["Content-Disposition"].startswith('attachment; filename="funnel-funnel-')
    assert client.get(csv_url("nonsense")).status_code == 404


def test_csv_safe():
    for text in ("=1+1", "+49 30 1234", "-2", "@SUM(A1)", "\tx", "\rx"):
        assert csv_safe(text) == "'" + text
    assert csv_safe("E-Book") == "E-Book" and csv_safe(None) == ""
    assert csv_safe(-2) == -2 and csv_safe(1.5) == 1.5


def count_queries(client, url, **params):
    with CaptureQueriesContext(connection) as context:
        assert client.get(url, params).status_code == 200
    return len(context.captured_queries)


def test_query_count_does_not_grow_with_leads(client, site, page, marketer, django_assert_max_num_queries):
    ScoringSettings.objects.create(site=site, mql_threshold=10)
    populate(site, page, 2, prefix="few")
    LeadScore.objects.create(lead=lead(site, "scored@example.org"), total=5)
    client.force_login(marketer)
    client.get(REPORT)  # warm up caches (site root paths, content types)
    few = {url: count_queries(client, url) for url in (REPORT, csv_url("funnel"), csv_url("top-mqls"),
                                                        reverse("wagtailadmin_home"))}
    populate(site, page, 60, prefix="many")
    for index in range(60):
        LeadScore.objects.create(lead=lead(site, f"score{index}@example.org"), total=index * 3)
    many = {url: count_queries(client, url) for url in few}
    assert many == few
    assert funnel_counts(client.get(REPORT))["sqls"] == 62
    assert few[REPORT] <= 30  # the admin's own chrome included
    with django_assert_max_num_queries(few[REPORT]):
        client.get(REPORT)


def test_dashboard_panel_needs_few_queries(rf, site, marketer, page):
    from inbound.scoring.report_views import FunnelPanel

    populate(site, page, 3)
    panel = FunnelPanel(marketer)
    with CaptureQueriesContext(connection) as context:
        html = panel.render_html({"request": rf.get("/")})
    assert len(context.captured_queries) <= 7
    assert 'data-count="3"' in html


def test_other_sites_data_never_counts_for_a_scoped_user(client, site, site_b, marketer, asset):
    foreign = gated(site_b, "Fremd", asset, "fremd")
    other = lead(site_b, "x@example.org")
    at = timezone.now() - timedelta(hours=1)
    view(site_b, "7" * 32, at)
    submission(other, foreign, at)
    confirmation(other, foreign, at)
    stage(other, MQL, at)
    client.force_login(marketer)
    assert set(funnel_counts(client.get(REPORT)).values()) == {0}
    assert set(funnel_counts(client.get(reverse("wagtailadmin_home"))).values()) == {0}
    assert "Fremd" not in client.get(REPORT).content.decode()
    assert len(read_csv(client.get(csv_url("top-confirmations")))) == 1  # the heading only
