"""The sales inbox: list, hand-over page, accept and reject (N5)."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone
from wagtail.models import ModelLogEntry

from inbound.handover import sales_admin
from inbound.handover.access import SALES_GROUP_NAME
from inbound.scoring.models import LEAD, MQL, REJECTED, SQL, SUBSCRIBER, LifecycleStage, StageChange
from tests.sales.conftest import lead_in_stage, make_sales_user, sales_team

pytestmark = pytest.mark.django_db

INDEX = reverse("inbound_sales:index")


def detail_url(lead):
    return reverse("inbound_sales:detail", args=[lead.pk])


def accept_url(lead):
    return reverse("inbound_sales:accept", args=[lead.pk])


def reject_url(lead):
    return reverse("inbound_sales:reject", args=[lead.pk])


def stage_of(lead):
    return LifecycleStage.objects.get(lead=lead).stage


def audit_rows(lead, action):
    return ModelLogEntry.objects.filter(object_id=str(lead.pk), action=action)


def messages_of(response):
    return [str(message) for message in response.context["messages"]] if response.context else []


# --- inbox -------------------------------------------------------------------------------------

def test_the_inbox_lists_the_mql_and_sql_leads_of_the_own_site_only(client, world):
    client.force_login(world["sales_a"])
    response = client.get(INDEX)
    assert response.status_code == 200
    content = response.content.decode()
    leads = world["leads"]
    assert [row["lead"] for row in response.context["rows"]] == [leads[MQL], leads[SQL]]  # newest first
    for hidden in (SUBSCRIBER, LEAD, REJECTED):
        assert leads[hidden].email not in content
    assert "mql@b.example.org" not in content
    assert "Site B GmbH" not in content  # not even offered in the site filter


def test_the_inbox_filters_by_stage_and_site(client, world):
    client.force_login(world["sales_a"])
    rows = client.get(INDEX, {"stage": SQL}).context["rows"]
    assert [row["lead"] for row in rows] == [world["leads"][SQL]]
    rows = client.get(INDEX, {"site": world["site_a"].pk, "stage": MQL}).context["rows"]
    assert [row["lead"] for row in rows] == [world["leads"][MQL]]
    # another site's id is not a valid choice: the filter is ignored, nothing of site B shows
    response = client.get(INDEX, {"site": world["site_b"].pk})
    assert "mql@b.example.org" not in response.content.decode()


def test_the_inbox_paginates(client, world, monkeypatch):
    monkeypatch.setattr(sales_admin, "PER_PAGE", 1)
    client.force_login(world["sales_a"])
    first = client.get(INDEX)
    second = client.get(INDEX, {"p": 2})
    assert [row["lead"] for row in first.context["rows"]] == [world["leads"][MQL]]
    assert [row["lead"] for row in second.context["rows"]] == [world["leads"][SQL]]


@pytest.mark.parametrize("extra", [3, 30])
def test_the_inbox_needs_the_same_number_of_queries_for_3_and_30_leads(
        client, world, extra, django_assert_max_num_queries):
    for index in range(extra):
        lead_in_stage(world["site_a"], f"many{index}@a.example.org", MQL if index % 2 else SQL)
    client.force_login(world["sales_a"])
    client.get(INDEX)  # warm caches (content types, site root paths)
    with django_assert_max_num_queries(14):
        response = client.get(INDEX)
    assert len(response.context["rows"]) == extra + 2


# --- hand-over page ----------------------------------------------------------------------------

def test_the_sales_user_sees_the_hand_over_and_the_view_is_logged(client, world):
    lead = world["leads"][MQL]
    client.force_login(world["sales_a"])
    response = client.get(detail_url(lead))
    assert response.status_code == 200
    content = response.content.decode()
    assert lead.email in content
    assert 'data-action="accept"' in content and 'data-action="reject"' in content
    assert "score reached the MQL threshold" in content  # stage history
    entry = audit_rows(lead, sales_admin.VIEW_ACTION).get()
    assert entry.user == world["sales_a"]
    assert lead.email not in entry.label


@pytest.mark.parametrize("which", ["b_mql", SUBSCRIBER, LEAD, REJECTED])
def test_leads_outside_the_inbox_are_a_404(client, world, which):
    lead = world["leads"][which]
    client.force_login(world["sales_a"])
    assert client.get(detail_url(lead)).status_code == 404
    assert client.post(accept_url(lead)).status_code == 404
    assert client.post(reject_url(lead), {"reason": "nope"}).status_code == 404
    assert stage_of(lead) == (MQL if which == "b_mql" else which)
    assert not ModelLogEntry.objects.filter(object_id=str(lead.pk)).exists()


def test_a_sales_user_of_another_site_gets_404(client, world):
    client.force_login(world["sales_b"])
    assert client.get(detail_url(world["leads"][MQL])).status_code == 404
    assert client.get(detail_url(world["leads"]["b_mql"])).status_code == 200


# --- decisions ---------------------------------------------------------------------------------

def test_accept_makes_the_lead_an_sql_with_who_and_when(client, world):
    lead, user = world["leads"][MQL], world["sales_a"]
    client.force_login(user)
    response = client.post(accept_url(lead), {"note": "Rufe Montag an"}, follow=True)
    assert response.redirect_chain[-1][0] == detail_url(lead)
    assert stage_of(lead) == SQL
    change = StageChange.objects.get(lead=lead, reason=StageChange.ACCEPTED)
    assert (change.from_stage, change.to_stage, change.user) == (MQL, SQL, user)
    assert change.note == "Rufe Montag an"
    assert audit_rows(lead, sales_admin.ACCEPT_ACTION).get().user == user
    content = response.content.decode()
    assert 'data-accepted-by="sales_a"' in content
    assert 'data-action="accept"' not in content  # decided: no more forms


def test_a_double_click_on_accept_says_already_accepted(client, world):
    lead = world["leads"][MQL]
    client.force_login(world["sales_a"])
    client.post(accept_url(lead))
    response = client.post(accept_url(lead), follow=True)
    assert response.status_code == 200
    assert "This lead has already been accepted." in messages_of(response)
    assert StageChange.objects.filter(lead=lead, reason=StageChange.ACCEPTED).count() == 1
    assert audit_rows(lead, sales_admin.ACCEPT_ACTION).count() == 1


def test_accept_after_a_concurrent_accept_says_already_accepted(client, world, monkeypatch):
    """The lookup saw an MQL, but another request accepted it before the lock: no error page."""
    from inbound.scoring import lifecycle

    lead, user = world["leads"][MQL], world["sales_a"]
    real_accept = lifecycle.accept

    def accept_twice(lead, **kwargs):
        real_accept(lead, user=user)
        return real_accept(lead, **kwargs)

    monkeypatch.setattr(lifecycle, "accept", accept_twice)
    client.force_login(user)
    response = client.post(accept_url(lead), follow=True)
    assert "This lead has already been accepted." in messages_of(response)


def test_reject_needs_a_reason(client, world):
    lead = world["leads"][MQL]
    client.force_login(world["sales_a"])
    response = client.post(reject_url(lead), {"reason": "   "})
    assert response.status_code == 200
    assert "Say why the lead is rejected." in response.content.decode()
    assert stage_of(lead) == MQL
    assert not audit_rows(lead, sales_admin.REJECT_ACTION).exists()


def test_reject_sends_the_lead_back_and_out_of_the_inbox(client, world):
    lead, user = world["leads"][MQL], world["sales_a"]
    client.force_login(user)
    response = client.post(reject_url(lead), {"reason": "Kein Budget vor 2027"})
    assert response.status_code == 302 and response.url == INDEX
    assert stage_of(lead) == REJECTED
    change = StageChange.objects.get(lead=lead, reason=StageChange.REJECTED)
    assert (change.user, change.note) == (user, "Kein Budget vor 2027")
    assert audit_rows(lead, sales_admin.REJECT_ACTION).get().user == user
    assert lead not in [row["lead"] for row in client.get(INDEX).context["rows"]]
    assert client.get(detail_url(lead)).status_code == 404


def test_a_restricted_lead_cannot_be_accepted(client, world):
    lead = world["leads"][MQL]
    lead.restricted_at = timezone.now()
    lead.save(update_fields=["restricted_at"])
    client.force_login(world["sales_a"])
    response = client.post(accept_url(lead), follow=True)
    assert response.status_code == 200
    assert "Processing of this lead is restricted or objected to." in messages_of(response)
    assert stage_of(lead) == MQL
    assert not audit_rows(lead, sales_admin.ACCEPT_ACTION).exists()


def test_an_sql_cannot_be_rejected(client, world):
    lead = world["leads"][SQL]
    client.force_login(world["sales_a"])
    client.post(reject_url(lead), {"reason": "doch nicht"})
    assert stage_of(lead) == SQL


def test_decisions_are_post_only(client, world):
    lead = world["leads"][MQL]
    client.force_login(world["sales_a"])
    assert client.get(accept_url(lead)).status_code == 405
    assert client.get(reject_url(lead)).status_code == 405
    assert stage_of(lead) == MQL


def test_decisions_need_a_csrf_token(world):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(world["sales_a"])
    assert client.post(accept_url(world["leads"][MQL])).status_code == 403
    assert stage_of(world["leads"][MQL]) == MQL


def test_viewing_without_the_decide_permission_shows_no_forms_and_refuses_decisions(client, world):
    """A site's team may be a group that can only look (view_handover without decide_handover)."""
    viewers = Group.objects.create(name="Sales viewers")
    viewers.permissions.set(Group.objects.get(name=SALES_GROUP_NAME).permissions.exclude(
        codename="decide_handover"))
    sales_team(world["site_a"], viewers)
    lead = world["leads"][MQL]
    client.force_login(make_sales_user("viewer", viewers))
    content = client.get(detail_url(lead)).content.decode()
    assert lead.email in content and 'data-action="accept"' not in content
    for url, data in ((accept_url(lead), {}), (reject_url(lead), {"reason": "x"})):
        response = client.post(url, data)
        assert response.status_code == 302 and response.url == reverse("wagtailadmin_home")
    assert stage_of(lead) == MQL


# --- menu and dashboard ------------------------------------------------------------------------

def test_the_dashboard_tells_sales_how_many_mqls_wait(client, world):
    lead_in_stage(world["site_a"], "second@a.example.org", MQL)
    client.force_login(world["sales_a"])
    response = client.get(reverse("wagtailadmin_home"))
    content = response.content.decode()
    assert 'data-waiting="2"' in content
    assert "2 new MQLs waiting for your decision." in content
    assert f'href="{INDEX}?stage=mql"' in content
    assert '"name": "sales-inbox"' in content  # the menu item (sidebar JSON)


def test_others_get_no_sales_panel_or_menu(client, world):
    from tests.rights.staff import LEAD_PERMISSIONS, make_user

    client.force_login(make_user("marketer", perms=LEAD_PERMISSIONS, pages=[world["site_a"].root_page]))
    content = client.get(reverse("wagtailadmin_home")).content.decode()
    assert "inbound-sales-waiting" not in content
    assert '"name": "sales-inbox"' not in content


def test_the_hand_over_page_shows_the_summary_without_phone_consent_no_number(client, world):
    from inbound.scoring.models import ScoreChange

    lead = world["leads"][MQL]
    ScoreChange.objects.create(lead=lead, rule_description="Firmengröße 50+", sub_score="fit", points=30,
                               reason=ScoreChange.SCORED)
    client.force_login(world["sales_a"])
    content = client.get(detail_url(lead)).content.decode()
    assert "Firmengröße 50+" in content
    assert 'data-phone-allowed="no"' in content
    assert "do not call" in content
