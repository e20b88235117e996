"""L1: every HTML page links to the imprint and privacy notice of the site being served."""

import re
from datetime import timedelta

import pytest
from bs4 import BeautifulSoup
from django.core import signing
from django.test import RequestFactory
from django.utils import translation
from freezegun import freeze_time

from inbound.optin import OptInRequest
from leadsite.views import server_error
from tests.gated.conftest import confirm_path, download_path, gated_page, on_commit, submit  # noqa: F401
from tests.legal.conftest import complete_legal_setup

pytestmark = pytest.mark.django_db


def legal_links(html):
    soup = BeautifulSoup(html, "html.parser")
    footer = soup.find("footer")
    assert footer is not None, "no footer"
    imprint = footer.find("a", class_="legal-imprint")
    privacy = footer.find("a", class_="legal-privacy")
    assert imprint is not None and privacy is not None, footer
    return imprint["href"], privacy["href"]


def assert_links_work(client, html, host=None):
    extra = {"HTTP_HOST": host} if host else {}
    hrefs = legal_links(html)
    for href in hrefs:
        response = client.get(href, **extra)
        assert response.status_code == 200, href
        assert response["Content-Type"].startswith("text/html")
    return hrefs


def test_crawl_sitemap_and_plugin_pages(client, gated_page, mailoutbox, on_commit):  # noqa: F811
    pages = {}
    sitemap = client.get("/sitemap.xml").content.decode()
    for url in re.findall(r"<loc>([^<]+)</loc>", sitemap):
        path = "/" + url.split("/", 3)[3]
        pages[path] = client.get(path)
    with on_commit():
        pages["landing (POST)"] = submit(client, gated_page)
    pages["invalid form (POST)"] = submit(client, gated_page, email="kaputt")
    confirm = confirm_path(mailoutbox[0])
    pages["confirm (GET)"] = client.get(confirm)
    with on_commit():
        pages["confirmed (POST)"] = client.post(confirm)
    pages["invalid token"] = client.get("/inbound/confirm/abc/")
    pages["invalid download"] = client.get("/inbound/download/abc/")
    token = signing.dumps([OptInRequest.objects.get().pk, "x"], salt="inbound.download")
    pages["foreign download"] = client.get(f"/inbound/download/{token}/")
    with freeze_time(OptInRequest.objects.get().created_at + timedelta(days=30)):
        pages["expired download"] = client.get(download_path(pages["confirmed (POST)"].content.decode()))
    pages["404"] = client.get("/gibt-es-nicht/")
    assert len(pages) >= 15
    for name, response in pages.items():
        assert response["Content-Type"].startswith("text/html"), name
        assert_links_work(client, response.content.decode())


def test_500_page_has_the_legal_links(client, demo_site):
    request = RequestFactory().get("/")
    with translation.override("de"):
        html = server_error(request).content.decode()
    imprint, privacy = assert_links_work(client, html)
    assert imprint.endswith("/impressum/")


def test_footer_links_work_without_javascript(client, demo_site):
    html = client.get("/").content.decode()
    footer = html.split('id="site-footer"', 1)[1]
    assert "<script" not in footer.split("</footer>")[0]
    assert 'href="/impressum/"' in footer and 'href="/datenschutz/"' in footer


def test_each_site_links_to_its_own_notices(client, bare_site):
    complete_legal_setup(bare_site, company="Firma B GmbH")
    html_b = client.get("/", HTTP_HOST="site-b.example").content.decode()
    imprint_b, _privacy_b = assert_links_work(client, html_b, host="site-b.example")
    page_b = client.get(imprint_b, HTTP_HOST="site-b.example").content.decode()
    assert "Firma B GmbH" in page_b and "Beispiel GmbH" not in page_b
    html_a = client.get("/").content.decode()
    imprint_a, _ = legal_links(html_a)
    page_a = client.get(imprint_a).content.decode()
    assert "Beispiel GmbH" in page_a and "Firma B GmbH" not in page_a
    # the 404 page of site B also links to B's notices
    missing_b = client.get("/nirgends/", HTTP_HOST="site-b.example").content.decode()
    imprint_404, _ = legal_links(missing_b)
    assert "Firma B GmbH" in client.get(imprint_404, HTTP_HOST="site-b.example").content.decode()


def test_site_without_notices_shows_the_gap_instead_of_a_dead_link(client, bare_site):
    html = client.get("/", HTTP_HOST="site-b.example").content.decode()
    footer = BeautifulSoup(html, "html.parser").find("footer")
    assert footer.find("a", class_="legal-imprint") is None
    assert footer.find(class_="legal-imprint") is not None
