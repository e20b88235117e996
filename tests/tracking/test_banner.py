"""The banner (T2, T4), nothing before consent (T1), the footer link (T3) and per-site texts."""

import re
from urllib.parse import urlsplit

import pytest
from bs4 import BeautifulSoup
from wagtail.models import Page, Site

from inbound.cookie_banner import CookieBannerSettings, CookieBannerTextVersion
from leadsite.models import HomePage
from tests.tracking.conftest import (
    CONSENT_COOKIE,
    SETTINGS_URL,
    STANDARD_PAGE,
    banner,
    choose,
)

pytestmark = pytest.mark.django_db


def test_first_visit_sets_no_cookie_and_shows_the_banner(client, demo_site):
    for path in ("/", STANDARD_PAGE, SETTINGS_URL, "/gibt-es-nicht/"):
        response = client.get(path)
        assert response.status_code in (200, 404), path
        assert not response.cookies, f"{path} set {list(response.cookies)}"
        assert "Set-Cookie" not in response.headers
    assert not client.cookies
    html = client.get("/").content.decode()
    section = banner(html)
    assert section is not None
    assert section.name == "section" and section["aria-labelledby"] == "cookie-banner-title"
    assert section.find(id="cookie-banner-title").get_text(strip=True) == "Cookies und Datenschutz"
    assert "csrfmiddlewaretoken" not in str(section), "a CSRF token would set a CSRF cookie (T1)"
    assert "Cookie" in client.get("/")["Vary"], "the page differs by the choice cookie"


def test_reject_and_accept_on_the_first_layer_with_the_same_class(client, demo_site):
    section = banner(client.get("/").content.decode())
    form = section.find("form")
    assert form["method"] == "post" and form["action"] == SETTINGS_URL
    first_layer = [b for b in form.find_all("button") if not b.find_parent("details")]
    by_value = {b["value"]: b for b in first_layer}
    assert set(by_value) == {"reject", "accept"}
    assert by_value["reject"].get_text(strip=True) == "Alle ablehnen"
    assert by_value["accept"].get_text(strip=True) == "Alle akzeptieren"
    assert by_value["reject"]["class"] == by_value["accept"]["class"]
    assert by_value["reject"]["type"] == by_value["accept"]["type"] == "submit"
    # both in equal grid columns of the same row
    columns = [b.find_parent("div") for b in first_layer]
    assert columns[0]["class"] == columns[1]["class"] == ["col"]
    assert columns[0].find_parent("div") is columns[1].find_parent("div")


def test_second_layer_states_what_how_long_and_who_per_purpose(client, demo_site):
    section = banner(client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode())
    details = section.find("details")
    assert details.find("summary").get_text(strip=True) == "Settings"
    boxes = {box["name"]: box for box in details.find_all("input", type="checkbox")}
    assert set(boxes) == {"statistics", "personalisation"}
    assert not any(box.has_attr("checked") for box in boxes.values()), "nothing pre-ticked"
    for name, box in boxes.items():
        label = details.find("label", attrs={"for": box["id"]})
        assert label is not None and label.get_text(strip=True)
        facts = details.find(id=box["aria-describedby"])
        terms = [dt.get_text(strip=True) for dt in facts.find_all("dt")]
        assert terms == ["What is stored", "How long", "Who receives it"], name
        assert all(dd.get_text(strip=True) for dd in facts.find_all("dd")), name
    text = details.get_text(" ", strip=True)
    assert "inbound_vid" in text and "12 months" in text and "13 months" in text
    assert "third parties" in text
    assert details.find("button", value="save").get_text(strip=True) == "Save selection"


def test_banner_speaks_german_by_default_and_english_on_request(client, demo_site):
    german = banner(client.get("/").content.decode()).get_text(" ", strip=True)
    english = banner(client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()).get_text(" ", strip=True)
    assert "Alle ablehnen" in german and "Statistik" in german
    assert "Reject all" in english and "Statistics" in english and "Alle ablehnen" not in english


def test_page_makes_no_request_to_another_host(client, demo_site):
    soup = BeautifulSoup(client.get("/").content.decode(), "html.parser")
    urls = [tag.get("src") or tag.get("href") for tag in soup.find_all(["script", "link", "img", "iframe"])]
    urls += [form.get("action") for form in soup.find_all("form")]
    for url in filter(None, urls):
        assert not urlsplit(url).netloc or urlsplit(url).netloc == "testserver", url
    scripts = [tag["src"] for tag in soup.find_all("script")]
    assert scripts == ["/static/inbound/cookie_banner.js"]
    js = client.get(scripts[0])
    body = b"".join(js.streaming_content) if js.streaming else js.content
    assert b"localStorage" not in body and b"sessionStorage" not in body and b"document.cookie" not in body
    assert not re.search(rb"https?://", body), "the script talks to this site only"


def test_banner_is_gone_after_a_choice_and_comes_back_on_the_settings_link(client, demo_site):
    choose(client, "reject")
    html = client.get("/").content.decode()
    assert banner(html) is None
    assert "cookie_banner.js" not in html, "no script once the visitor has chosen"
    footer = BeautifulSoup(html, "html.parser").find("footer")
    link = footer.find("a", class_="cookie-settings")
    assert link["href"] == SETTINGS_URL and link.get_text(strip=True) == "Cookie-Einstellungen"
    settings_page = client.get(link["href"])
    soup = BeautifulSoup(settings_page.content.decode(), "html.parser")
    assert soup.find(id="cookie-banner") is None, "the page itself is the second layer"
    boxes = {box["name"] for box in soup.find_all("input", type="checkbox")}
    assert boxes == {"statistics", "personalisation"}
    assert soup.find("button", value="reject")["class"] == soup.find("button", value="accept")["class"]


def test_settings_page_shows_the_current_choice_in_its_boxes(client, demo_site):
    choose(client, "save", statistics=True)
    soup = BeautifulSoup(client.get(SETTINGS_URL, HTTP_ACCEPT_LANGUAGE="en").content.decode(), "html.parser")
    assert soup.find("input", attrs={"name": "statistics"}).has_attr("checked")
    assert not soup.find("input", attrs={"name": "personalisation"}).has_attr("checked")
    current = soup.find(class_="cookie-current-choice").get_text(" ", strip=True)
    assert "Statistics: allowed" in current and "Personalisation: rejected" in current


@pytest.mark.parametrize("header", ["HTTP_DNT", "HTTP_SEC_GPC"])
def test_privacy_signal_counts_as_a_choice_so_no_banner(client, demo_site, header):
    html = client.get("/", **{header: "1"}).content.decode()
    assert banner(html) is None
    assert banner(client.get("/", **{header: "0"}).content.decode()) is not None
    page = client.get(SETTINGS_URL, HTTP_ACCEPT_LANGUAGE="en", **{header: "1"}).content.decode()
    assert "Do-Not-Track or Global Privacy Control" in page


def test_footer_link_on_every_page(client, demo_site, gated_page):
    """T3: every page's footer has the plain "Cookie-Einstellungen" link, without JavaScript."""
    paths = ["/", STANDARD_PAGE, "/kontakt/", gated_page.url, SETTINGS_URL, "/gibt-es-nicht/",
             "/inbound/confirm/abc/", "/inbound/meine-daten/", "/impressum/", "/datenschutz/"]
    for path in paths:
        html = client.get(path).content.decode()
        footer = BeautifulSoup(html, "html.parser").find("footer")
        assert footer is not None, path
        link = footer.find("a", class_="cookie-settings")
        assert link is not None and link["href"] == SETTINGS_URL, path
        assert link.get_text(strip=True) == "Cookie-Einstellungen", path
        assert footer.find("script") is None, path


def test_500_page_has_the_footer_link(demo_site, rf):
    from leadsite.views import server_error

    request = rf.get("/")
    html = server_error(request).content.decode()
    assert f'href="{SETTINGS_URL}"' in html


# --- texts per site, versioned --------------------------------------------------------------------

@pytest.fixture
def second_site(demo_site, settings):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "site-b.example"]
    home = HomePage(title="Site B", slug="site-b")
    Page.get_first_root_node().add_child(instance=home)
    home.save_revision().publish()
    return Site.objects.create(hostname="site-b.example", port=80, root_page=home, site_name="Site B")


def test_texts_are_per_site_and_each_change_is_a_new_version(client, demo_site, second_site):
    client.get("/")  # the defaults are created on first use, as version 1
    banner_b = CookieBannerSettings.for_site(second_site)
    assert banner_b.text_version == 1
    banner_b.title_de = "Ihre Privatsphäre bei Site B"
    banner_b.save()
    assert banner_b.text_version == 2
    banner_b.save()  # nothing changed: no new version
    assert CookieBannerTextVersion.objects.filter(site=second_site).count() == 2
    old = CookieBannerTextVersion.objects.get(site=second_site, version=1)
    assert old.texts["title_de"] == "Cookies und Datenschutz"
    assert len(old.text_hash) == 64

    html_b = client.get("/", HTTP_HOST="site-b.example").content.decode()
    assert banner(html_b).find("h2").get_text(strip=True) == "Ihre Privatsphäre bei Site B"
    html_a = client.get("/").content.decode()
    assert banner(html_a).find("h2").get_text(strip=True) == "Cookies und Datenschutz"


def test_versions_are_immutable(demo_site):
    from inbound.consent import ImmutableRecordError

    version = CookieBannerTextVersion.objects.create(site=demo_site, version=7, texts={"a": "b"})
    version.texts = {"a": "c"}
    with pytest.raises(ImmutableRecordError):
        version.save()
    with pytest.raises(ImmutableRecordError):
        version.delete()


def test_english_falls_back_to_german_when_empty(client, demo_site):
    settings_ = CookieBannerSettings.for_site(demo_site)
    settings_.accept_label_en = ""
    settings_.save()
    section = banner(client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode())
    assert section.find("button", value="accept").get_text(strip=True) == "Alle akzeptieren"


def test_a_changed_text_asks_again(client, demo_site):
    choose(client, "accept")
    assert client.cookies[CONSENT_COOKIE].value == "1.11"
    assert banner(client.get("/").content.decode()) is None
    settings_ = CookieBannerSettings.for_site(demo_site)
    settings_.statistics_duration_de = "Cookie: 6 Monate."
    settings_.save()
    assert banner(client.get("/").content.decode()) is not None, "consent to old texts no longer counts"
    choose(client, "accept")
    assert client.cookies[CONSENT_COOKIE].value == "2.11"


def test_banner_texts_are_editable_in_the_admin(client, demo_site, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@example.org", "pw")
    client.force_login(admin)
    url = f"/admin/settings/inbound/cookiebannersettings/{demo_site.pk}/"
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="accept_label_de"' in html and 'name="accept_label_en"' in html
    assert "Alle akzeptieren" in html

    data = CookieBannerSettings.for_site(demo_site).texts()
    data["accept_label_de"] = "Alles erlauben"
    data["reject_label_en"] = "Refuse all"
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert CookieBannerSettings.for_site(demo_site).text_version == 2
    latest = CookieBannerTextVersion.objects.get(site=demo_site, version=2)
    assert latest.texts["accept_label_de"] == "Alles erlauben"
    client.logout()
    section = banner(client.get("/").content.decode())
    assert section.find("button", value="accept").get_text(strip=True) == "Alles erlauben"
    english = banner(client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode())
    assert english.find("button", value="reject").get_text(strip=True) == "Refuse all"
