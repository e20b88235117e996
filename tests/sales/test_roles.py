"""Sales users see the sales inbox and nothing else of the admin's data (S1)."""

import pytest
from django.urls import reverse

from inbound.scoring.models import MQL
from tests.rights.staff import LEAD_PERMISSIONS, make_user

pytestmark = pytest.mark.django_db

HOME = reverse("wagtailadmin_home")


def test_sales_users_do_not_get_the_marketers_lead_list(client, world):
    lead = world["leads"][MQL]
    client.force_login(world["sales_a"])
    for url in (reverse("leads:index"), reverse("leads:inspect", args=[lead.pk])):
        response = client.get(url)
        assert response.status_code in (302, 403), url
        assert lead.email not in response.content.decode()


def test_sales_users_do_not_get_the_page_explorer_or_snippets(client, world):
    client.force_login(world["sales_a"])
    root = world["site_a"].root_page
    for url in (reverse("wagtailadmin_explore", args=[root.pk]),
                reverse("wagtailadmin_pages:edit", args=[root.pk])):
        response = client.get(url)
        assert response.status_code in (302, 403), url
    menu = client.get(HOME).content.decode()  # the sidebar's items are JSON in the page
    assert '"name": "sales-inbox"' in menu
    for hidden in ("explorer", "leads", "snippets", "reports", "settings"):
        assert f'"name": "{hidden}"' not in menu, hidden


def test_without_the_inbox_permission_the_inbox_redirects(client, world):
    """Marketers see leads in their own list; the sales inbox needs inbound.view_handover."""
    client.force_login(make_user("marketer", perms=LEAD_PERMISSIONS, pages=[world["site_a"].root_page]))
    lead = world["leads"][MQL]
    for url in (reverse("inbound_sales:index"), reverse("inbound_sales:detail", args=[lead.pk])):
        response = client.get(url)
        assert response.status_code == 302 and response.url == HOME, url
    response = client.post(reverse("inbound_sales:accept", args=[world["leads"][MQL].pk]))
    assert response.status_code == 302 and response.url == HOME


def test_anonymous_users_are_sent_to_the_login(client, world):
    response = client.get(reverse("inbound_sales:detail", args=[world["leads"][MQL].pk]))
    assert response.status_code == 302 and response.url.startswith(reverse("wagtailadmin_login"))


def test_superusers_see_every_sites_hand_overs(client, world):
    client.force_login(make_user("root", superuser=True))
    rows = client.get(reverse("inbound_sales:index")).context["rows"]
    assert {row["lead"].email for row in rows} == {"mql@a.example.org", "sql@a.example.org",
                                                   "mql@b.example.org"}
