"""The cached gated form (inbound/form_cache.py): the same HTML as without the cache, changes
show at once, and the CSRF token stays per request."""

import re

import pytest
from bs4 import BeautifulSoup
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from inbound import form_cache
from inbound.legal import LegalSettings
from inbound.pages import GatedPage
from tests.gated.conftest import submit

pytestmark = pytest.mark.django_db

CSRF_INPUT = re.compile(r'(name="csrfmiddlewaretoken" value=")[^"]+(")')


def without_csrf(html):
    return CSRF_INPUT.sub(r"\1TOKEN\2", html)


def form_of(html):
    return BeautifulSoup(html, "html.parser").find("form", attrs={"method": "post"})


def consent_label(html, name="consent_email_nurture"):
    form = form_of(html)
    box = form.find("input", attrs={"name": name})
    return form.find("label", attrs={"for": box["id"]})


@pytest.fixture
def uncached(monkeypatch):
    """Switch the cache off for the requests made inside `with uncached():`."""
    class Switch:
        def __enter__(self):
            monkeypatch.setattr(form_cache, "is_cacheable", lambda request: False)

        def __exit__(self, *exc):
            monkeypatch.undo()

    return Switch


def test_cached_page_is_identical_to_the_uncached_one(client, gated_page, uncached):
    with uncached():
        plain = client.get(gated_page.url).content.decode()
    first = client.get(gated_page.url).content.decode()  # miss: renders and stores
    second = client.get(gated_page.url).content.decode()  # hit
    assert without_csrf(first) == without_csrf(plain)
    assert without_csrf(second) == without_csrf(plain)
    names = [field["name"] for field in form_of(second).find_all(["input", "textarea"])]
    assert names[0] == "csrfmiddlewaretoken" and "email" in names and "website" in names


def test_cached_html_is_the_inside_of_the_form_without_the_token(rf, gated_page, demo_site):
    request = rf.get(gated_page.url)
    form = gated_page.get_form(request=request)
    fields_html = gated_page.render_form_fields(request, form)
    assert "csrfmiddlewaretoken" not in fields_html
    assert 'name="email"' in fields_html and 'name="consent_tracking"' in fields_html
    assert "<form" not in fields_html and "</form>" not in fields_html


def test_english_and_german_are_cached_apart(client, gated_page, purposes):
    german = client.get(gated_page.url).content.decode()
    english = client.get(gated_page.url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert purposes["nurture"].text_de in german and purposes["nurture"].text_en not in german
    assert purposes["nurture"].text_en in english and purposes["nurture"].text_de not in english


def test_a_cache_hit_does_not_build_the_form(client, gated_page, monkeypatch):
    client.get(gated_page.url)  # fills the caches a running site already has (site root paths)
    form_cache.bump_generation()
    with CaptureQueriesContext(connection) as miss:
        expected = without_csrf(client.get(gated_page.url).content.decode())

    def refuse(*args, **kwargs):
        raise AssertionError("the form was built on a cache hit")

    monkeypatch.setattr(GatedPage, "get_form", refuse)
    monkeypatch.setattr(GatedPage, "get_form_class", refuse)
    with CaptureQueriesContext(connection) as hit:
        response = client.get(gated_page.url)
    assert response.status_code == 200
    assert without_csrf(response.content.decode()) == expected
    assert not any("inbound_consenttextversion" in q["sql"] or "inbound_gatedformfield" in q["sql"]
                   for q in hit.captured_queries)
    assert len(hit) < len(miss)


def test_a_new_consent_text_shows_at_once(client, gated_page, purposes):
    client.get(gated_page.url)
    nurture = purposes["nurture"]
    nurture.text_de = "Neuer Einwilligungstext: Ja, schickt mir Post. Widerruf jederzeit möglich."
    nurture.save()
    html = client.get(gated_page.url).content.decode()
    assert nurture.text_de in consent_label(html).get_text(" ", strip=True)


def test_a_deactivated_purpose_disappears_at_once(client, gated_page, purposes):
    assert 'name="consent_phone"' in client.get(gated_page.url).content.decode()
    purposes["phone"].active = False
    purposes["phone"].save()
    assert 'name="consent_phone"' not in client.get(gated_page.url).content.decode()


def privacy_href(html):
    link = consent_label(html).find("a")
    return link["href"] if link is not None else None


def test_a_new_privacy_page_url_shows_at_once(client, gated_page, demo_site):
    before = privacy_href(client.get(gated_page.url).content.decode())
    assert before and before.endswith("/datenschutz/")
    privacy = LegalSettings.for_site(demo_site).privacy_page.specific
    privacy.slug = "datenschutzerklaerung"
    privacy.save_revision().publish()
    after = privacy_href(client.get(gated_page.url).content.decode())
    assert after and after.endswith("/datenschutzerklaerung/")


def test_a_changed_legal_setting_shows_at_once(client, gated_page, demo_site):
    assert privacy_href(client.get(gated_page.url).content.decode())
    settings = LegalSettings.for_site(demo_site)
    settings.privacy_page = None
    settings.save()
    assert privacy_href(client.get(gated_page.url).content.decode()) is None


def test_a_republished_page_shows_its_new_fields_at_once(client, gated_page):
    assert 'name="firma"' in client.get(gated_page.url).content.decode()
    page = GatedPage.objects.get(pk=gated_page.pk)
    page.form_fields.all().delete()
    page.save_revision().publish()
    assert 'name="firma"' not in client.get(gated_page.url).content.decode()


def test_the_csrf_token_stays_per_request(gated_page):
    Client().get(gated_page.url)  # fills the cache
    visitor = Client(enforce_csrf_checks=True)
    response = visitor.get(gated_page.url)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.content.decode()).group(1)
    assert "csrftoken" in response.cookies, "a cache hit still sets the visitor's CSRF cookie"
    other = Client().get(gated_page.url).content.decode()
    assert token not in other
    answer = visitor.post(gated_page.url, {"email": "csrf@example.org", "website": "",
                                           "csrfmiddlewaretoken": token})
    assert answer.status_code == 200


def test_a_form_with_errors_is_rendered_bound_and_not_cached(client, gated_page):
    client.get(gated_page.url)
    response = submit(client, gated_page, email="kaputt", firma="Beispiel AG")
    assert response.status_code == 400
    assert 'value="Beispiel AG"' in response.content.decode()
    again = client.get(gated_page.url).content.decode()
    assert "Beispiel AG" not in again and "is-invalid" not in again


def test_previews_are_not_cached(gated_page, rf, monkeypatch):
    stored = []
    monkeypatch.setattr(form_cache, "store", lambda key, html: stored.append(key))
    request = rf.get(gated_page.url)
    request.is_preview = True
    request.user = None
    gated_page.serve(request).render()
    assert stored == []
