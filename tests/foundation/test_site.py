"""The site a new user sees: home page, navigation, sitemap, robots.txt, error pages, admin."""

import re

import pytest
from django.core.management import call_command
from django.test import RequestFactory
from django.utils import translation
from wagtail.models import Page

from leadsite import demo
from leadsite.models import HomePage, StandardPage
from leadsite.views import server_error

pytestmark = pytest.mark.django_db


def test_home_page_renders_with_navigation(client, demo_site):
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="de">' in html
    assert "Willkommen bei der Beispiel GmbH" in html
    assert 'href="/ueber-uns/"' in html and "Über uns" in html
    assert "bootstrap.min.css" in html
    assert '<footer' in html


def test_standard_page_renders_its_body(client, demo_site):
    response = client.get("/ueber-uns/")
    assert response.status_code == 200
    assert "frei erfundenes Unternehmen" in response.content.decode()


def test_sitemap_lists_every_public_page(client, demo_site):
    response = client.get("/sitemap.xml")
    assert response.status_code == 200
    locations = set(re.findall(r"<loc>([^<]+)</loc>", response.content.decode()))
    live_pages = Page.objects.live().public().filter(depth__gte=2)
    assert live_pages.count() >= 3
    for page in live_pages:
        assert page.full_url in locations
    draft = StandardPage(title="Entwurf", slug="entwurf", live=False)
    demo_site.root_page.add_child(instance=draft)
    response = client.get("/sitemap.xml")
    assert "/entwurf/" not in response.content.decode()


def test_robots_txt_points_to_sitemap(client):
    response = client.get("/robots.txt")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert "Sitemap: http://testserver/sitemap.xml" in body
    assert "Disallow: /admin/" in body


def test_404_page_is_german_by_default_and_english_on_request(client, demo_site):
    response = client.get("/gibt-es-nicht/")
    assert response.status_code == 404
    assert "Seite nicht gefunden" in response.content.decode()
    response = client.get("/gibt-es-nicht/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()
    assert '<html lang="en">' in response.content.decode()


def test_500_page_renders_with_layout(demo_site):
    request = RequestFactory().get("/")
    with translation.override("de"):
        response = server_error(request)
    assert response.status_code == 500
    html = response.content.decode()
    assert "Serverfehler" in html
    assert "<footer" in html


def test_seed_demo_is_idempotent(demo_site):
    demo.seed()  # with the demo personas, which the fixture leaves out
    counts = (Page.objects.count(), HomePage.objects.count(), StandardPage.objects.count())
    _site, changes = demo.seed()
    assert changes == []
    assert (Page.objects.count(), HomePage.objects.count(), StandardPage.objects.count()) == counts
    assert demo_site.root_page.specific_class is HomePage


def test_dev_admin_credentials_log_in(client, settings, capsys):
    settings.DEBUG = True
    call_command("ensure_dev_admin")
    output = capsys.readouterr().out
    password = re.search(r"password: (\S+)", output).group(1)
    call_command("ensure_dev_admin")
    assert "password:" not in capsys.readouterr().out, "credentials are printed once only"
    assert client.login(username="admin", password=password)
    response = client.get("/admin/")
    assert response.status_code == 200


def test_dev_admin_refuses_without_debug(settings):
    from django.core.management.base import CommandError

    settings.DEBUG = False
    with pytest.raises(CommandError):
        call_command("ensure_dev_admin")


def test_admin_login_page(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200
