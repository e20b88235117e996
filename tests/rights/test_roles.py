"""Roles against every lead view, export and action (S1, Trennungsgebot).

Five roles, two sites, one lead on each: for every URL that shows, exports or changes lead
data, a role either gets the data of the leads it may see or a 302 (no permission: the
admin's redirect) or 404 (lead of a site outside its scope). The e-mail address never appears
in a response the role may not see, nothing changes and nothing is audited.
"""

import pytest
from django.urls import reverse
from django.utils import timezone
from wagtail.models import ModelLogEntry

from inbound.leads import Lead
from inbound.retention import RetentionRun
from tests.rights.staff import (
    LEAD_PERMISSIONS,
    SITE_B_ANSWER,
    SITE_B_EMAIL,
    make_site_b,
    make_site_b_lead,
    make_user,
)

pytestmark = pytest.mark.django_db

EMAIL_A = "max.muster@example.org"  # the confirmed lead of tests/rights/conftest.py
ALL_EMAILS = (EMAIL_A, SITE_B_EMAIL)
LOGIN = "/admin/login/"

# role → the sites ("a", "b") whose leads it may see
VISIBLE = {"anonymous": set(), "editor": set(), "marketer_a": {"a"}, "marketer_b": {"b"},
           "superuser": {"a", "b"}}
HAS_LEAD_PERMISSIONS = {"marketer_a", "marketer_b", "superuser"}


@pytest.fixture
def world(confirmed_lead, gated_page, demo_site, asset):
    site_b = make_site_b()
    lead_b, page_b = make_site_b_lead(site_b, asset)
    RetentionRun.objects.create(job="raw_events", counts={"events": 3}, finished_at=timezone.now())
    users = {
        "anonymous": None,
        "editor": make_user("editor", pages=[demo_site.root_page, site_b.root_page]),
        "marketer_a": make_user("marketer_a", perms=LEAD_PERMISSIONS, pages=[demo_site.root_page]),
        "marketer_b": make_user("marketer_b", perms=LEAD_PERMISSIONS, pages=[site_b.root_page]),
        "superuser": make_user("admin", superuser=True),
    }
    return {"leads": {"a": confirmed_lead, "b": lead_b}, "pages": {"a": gated_page, "b": page_b},
            "users": users}


def content_of(response):
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def email_of(site):
    return EMAIL_A if site == "a" else SITE_B_EMAIL


def assert_denied(client, response, role, what):
    """302 to the login (anonymous) or the admin home (no permission); no address anywhere."""
    assert response.status_code == 302, (role, what, response.status_code)
    expected = LOGIN if role == "anonymous" else reverse("wagtailadmin_home")
    assert response["Location"].startswith(expected), (role, what, response["Location"])
    text = content_of(response) + content_of(client.get(response["Location"]))
    for email in ALL_EMAILS:
        assert email not in text, (role, what)


def assert_not_found(response, role, what):
    assert response.status_code == 404, (role, what, response.status_code)
    for email in ALL_EMAILS:
        assert email not in content_of(response), (role, what)


def lead_url(name, lead):
    return reverse(f"leads:{name}", args=[lead.pk])


def check_lead_reads(client, role, site, lead):
    """Detail, proof JSON, proof print, R1 export and the erase confirmation page."""
    for name in ("inspect", "proof_json", "proof_print", "data_json", "erase"):
        response = client.get(lead_url(name, lead))
        what = f"{name} of lead {site}"
        if site in VISIBLE[role]:
            assert response.status_code == 200, (role, what, response.status_code)
            text = content_of(response)
            assert email_of(site) in text, (role, what)
            other = SITE_B_EMAIL if site == "a" else EMAIL_A
            assert other not in text, (role, what)
        elif role in HAS_LEAD_PERMISSIONS:
            assert_not_found(response, role, what)
        else:
            assert_denied(client, response, role, what)


def check_form_submissions(client, role, site, page):
    """Wagtail's submissions listing of the site's gated page, and its CSV export."""
    listing = reverse("wagtailforms:list_submissions", args=[page.pk])
    for params, what in (({}, "submissions"), ({"export": "csv"}, "CSV")):
        response = client.get(listing, params)
        what = f"{what} of page {site}"
        if site in VISIBLE[role]:
            assert response.status_code == 200, (role, what, response.status_code)
            text = content_of(response)
            assert email_of(site) in text, (role, what)
            if site == "b":
                assert SITE_B_ANSWER in text
            if params:
                assert response["Content-Type"].startswith("text/csv")
        else:
            assert response.status_code in (302, 403, 404), (role, what, response.status_code)
            text = content_of(response)
            if response.status_code == 302:
                text += content_of(client.get(response["Location"]))
            for email in ALL_EMAILS:
                assert email not in text, (role, what)
            assert SITE_B_ANSWER not in text


def check_lead_actions(client, role, site, lead):
    """Restrict and object (POST), then erase (POST): done only where the role may."""
    for name, data, field in (("restriction", {"restricted": "1"}, "restricted_at"),
                              ("objection", {"objected": "1"}, "objected_at")):
        response = client.post(lead_url(name, lead), data)
        what = f"{name} of lead {site}"
        lead.refresh_from_db()
        if site in VISIBLE[role]:
            assert response.status_code == 302 and response["Location"] == lead_url("inspect", lead)
            assert getattr(lead, field) is not None, (role, what)
            continue
        if role in HAS_LEAD_PERMISSIONS:
            assert_not_found(response, role, what)
        else:
            assert_denied(client, response, role, what)
        assert getattr(lead, field) is None, (role, what)

    response = client.post(lead_url("erase", lead))
    what = f"erasure of lead {site}"
    if site in VISIBLE[role]:
        assert response.status_code == 302 and response["Location"] == reverse("leads:index")
        assert not Lead.objects.filter(pk=lead.pk).exists()
        return
    if role in HAS_LEAD_PERMISSIONS:
        assert_not_found(response, role, what)
    else:
        assert_denied(client, response, role, what)
    assert Lead.objects.filter(pk=lead.pk).exists(), (role, what)


@pytest.mark.parametrize("role", list(VISIBLE))
def test_every_lead_view_export_and_action_respects_role_and_site(client, world, role):
    user = world["users"][role]
    if user is not None:
        client.force_login(user)

    # the list (full page and the results fragment used by search and filters)
    for name in ("index", "index_results"):
        response = client.get(reverse(f"leads:{name}"))
        if VISIBLE[role]:
            assert response.status_code == 200
            text = content_of(response)
            for site in ("a", "b"):
                assert (email_of(site) in text) == (site in VISIBLE[role]), (role, name, site)
        else:
            assert_denied(client, response, role, name)

    # the retention log: counts only, for everyone who may see leads
    response = client.get(reverse("retention_runs:index"))
    if role in HAS_LEAD_PERMISSIONS:
        assert response.status_code == 200 and "events: 3" in content_of(response)
    else:
        assert_denied(client, response, role, "retention runs")

    for site in ("a", "b"):
        check_lead_reads(client, role, site, world["leads"][site])
        check_form_submissions(client, role, site, world["pages"][site])

    logged_before_actions = set(ModelLogEntry.objects.filter(action__startswith="inbound.lead")
                                .values_list("object_id", flat=True))
    assert logged_before_actions == {str(world["leads"][site].pk) for site in VISIBLE[role]}, (
        "views and exports are audited for exactly the leads the role may see")

    for site in ("a", "b"):
        check_lead_actions(client, role, site, world["leads"][site])

    remaining = {site for site in ("a", "b") if Lead.objects.filter(pk=world["leads"][site].pk).exists()}
    assert remaining == {"a", "b"} - VISIBLE[role]
