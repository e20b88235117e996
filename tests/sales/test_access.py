"""The group "Sales" and the scope of the sales role (N5, S1)."""

import pytest
from django.contrib.auth.models import Group

from inbound.handover.access import (
    SALES_GROUP_NAME,
    ensure_sales_group,
    sales_leads_for_user,
    sales_sites_for_user,
)
from inbound.scoring.models import MQL, SQL
from tests.rights.staff import LEAD_PERMISSIONS, make_user
from tests.sales.conftest import make_sales_user

pytestmark = pytest.mark.django_db


def permission_names(group):
    permissions = group.permissions.select_related("content_type")
    return {f"{p.content_type.app_label}.{p.codename}" for p in permissions}


def test_the_sales_group_exists_after_migrate_with_exactly_its_permissions():
    group = Group.objects.get(name=SALES_GROUP_NAME)
    assert permission_names(group) == {"wagtailadmin.access_admin", "inbound.view_handover",
                                       "inbound.decide_handover"}
    assert not group.page_permissions.exists()
    assert not group.collection_permissions.exists()


def test_ensure_sales_group_is_idempotent_and_keeps_what_an_administrator_added():
    group = Group.objects.get(name=SALES_GROUP_NAME)
    group.permissions.remove(*group.permissions.filter(codename="decide_handover"))
    ensure_sales_group()
    ensure_sales_group()
    assert Group.objects.filter(name=SALES_GROUP_NAME).count() == 1
    assert "inbound.decide_handover" in permission_names(group)


def test_sales_sites_are_those_whose_sales_team_the_user_is_in(world):
    assert list(sales_sites_for_user(world["sales_a"])) == [world["site_a"]]
    assert list(sales_sites_for_user(world["sales_b"])) == [world["site_b"]]
    outsider = make_user("outsider", perms=("inbound.view_handover",))
    assert not sales_sites_for_user(outsider).exists()
    assert set(sales_sites_for_user(make_user("root", superuser=True))) == {world["site_a"], world["site_b"]}


def test_sales_leads_are_the_mql_and_sql_leads_of_the_own_sites(world):
    leads = world["leads"]
    assert set(sales_leads_for_user(world["sales_a"])) == {leads[MQL], leads[SQL]}
    assert set(sales_leads_for_user(world["sales_b"])) == {leads["b_mql"]}


def test_a_member_of_the_team_without_the_inbox_permission_sees_no_leads(world):
    team_a = Group.objects.get(name=SALES_GROUP_NAME)
    marketer = make_user("marketer", perms=LEAD_PERMISSIONS)  # view_lead, but no view_handover
    marketer.groups.add(Group.objects.create(name="plain"))
    assert not sales_leads_for_user(marketer).exists()
    member = make_sales_user("member", team_a)
    assert sales_leads_for_user(member).count() == 2
