"""The choice endpoint: one strictly necessary cookie with the text version, the visitor cookie
only with statistics consent, the same-origin check instead of a CSRF cookie."""

import json

import pytest
from django.test import Client

from inbound.cookie_banner import CookieBannerSettings
from inbound.leads import LeadEvent
from tests.tracking.conftest import (
    CONSENT_COOKIE,
    SAME_ORIGIN,
    SETTINGS_URL,
    VISITOR_COOKIE,
    banner,
    choose,
    is_visitor_id,
    tracked,
)

pytestmark = pytest.mark.django_db

YEAR = 365 * 24 * 3600


def test_accept_sets_the_choice_and_a_visitor_cookie(client, demo_site):
    response = choose(client, "accept", next_url="/ueber-uns/")
    assert response.status_code == 303 and response["Location"] == "/ueber-uns/"
    assert set(response.cookies) == {CONSENT_COOKIE, VISITOR_COOKIE}, "no session or CSRF cookie"
    consent = response.cookies[CONSENT_COOKIE]
    assert consent.value == "1.11"  # text version 1, statistics and personalisation
    visitor = response.cookies[VISITOR_COOKIE]
    assert is_visitor_id(visitor.value)  # 128 random bits
    for cookie in (consent, visitor):
        assert cookie["samesite"] == "Lax" and cookie["httponly"] and cookie["path"] == "/"
        assert cookie["max-age"] == YEAR
        assert not cookie["secure"], "Secure follows SESSION_COOKIE_SECURE, off in tests"
        assert not cookie["domain"], "first-party: host-only"


def test_cookies_are_secure_in_production(client, demo_site, settings):
    settings.SESSION_COOKIE_SECURE = True
    response = choose(client, "accept")
    assert response.cookies[CONSENT_COOKIE]["secure"] and response.cookies[VISITOR_COOKIE]["secure"]
    deleted = choose(client, "reject").cookies[VISITOR_COOKIE]
    assert deleted["max-age"] == 0 and deleted["secure"], "deleted with the attributes it was set with"


def test_visitor_ids_are_random(demo_site):
    ids = {choose(Client(), "accept").cookies[VISITOR_COOKIE].value for _ in range(5)}
    assert len(ids) == 5


def test_reject_stores_only_the_choice(client, demo_site):
    response = choose(client, "reject")
    assert set(response.cookies) == {CONSENT_COOKIE}
    assert response.cookies[CONSENT_COOKIE].value == "1.00"
    assert not tracked().exists(), "a rejection stores nothing about the visitor"


@pytest.mark.parametrize(("fields", "expected"), [
    ({"statistics": True}, "1.10"),
    ({"statistics": True, "personalisation": True}, "1.11"),
    ({"personalisation": True}, "1.00"),  # personalisation builds on statistics
    ({}, "1.00"),
])
def test_save_stores_each_purpose(client, demo_site, fields, expected):
    response = choose(client, "save", **fields)
    assert response.cookies[CONSENT_COOKIE].value == expected
    assert (VISITOR_COOKIE in response.cookies) == expected.endswith(("10", "11"))


def test_withdrawal_deletes_the_visitor_cookie(client, demo_site):
    choose(client, "accept")
    visitor = client.cookies[VISITOR_COOKIE].value
    response = choose(client, "save", personalisation=True)  # statistics off
    assert response.cookies[CONSENT_COOKIE].value == "1.00"
    deleted = response.cookies[VISITOR_COOKIE]
    assert deleted.value == "" and deleted["max-age"] == 0
    assert VISITOR_COOKIE not in client.cookies or client.cookies[VISITOR_COOKIE].value == ""
    withdrawal = tracked(LeadEvent.TRACK_WITHDRAWN).get()
    assert withdrawal.visitor_id == visitor and withdrawal.lead_id is None


def test_accept_records_the_text_version_as_proof(client, demo_site):
    choose(client, "save", statistics=True)
    proof = tracked(LeadEvent.TRACK_CONSENT).get()
    assert proof.visitor_id == client.cookies[VISITOR_COOKIE].value
    assert proof.data == {"version": 1, "statistics": True, "personalisation": False}


def test_the_version_seen_is_recorded_never_a_newer_one(client, demo_site):
    client.get("/")
    banner_ = CookieBannerSettings.for_site(demo_site)
    banner_.intro_de = "Neuer Text."
    banner_.save()
    assert banner_.text_version == 2
    response = client.post(SETTINGS_URL, {"action": "accept", "version": "1"}, **SAME_ORIGIN)
    assert response.cookies[CONSENT_COOKIE].value == "1.11", "given on the old text"
    assert banner(client.get("/").content.decode()) is not None, "so the banner asks again"
    response = client.post(SETTINGS_URL, {"action": "accept", "version": "99"}, **SAME_ORIGIN)
    assert response.cookies[CONSENT_COOKIE].value == "2.11"
    response = client.post(SETTINGS_URL, {"action": "reject"}, **SAME_ORIGIN)
    assert response.cookies[CONSENT_COOKIE].value == "2.00"


def test_unknown_action_is_refused(client, demo_site):
    response = client.post(SETTINGS_URL, {"action": "maybe"}, **SAME_ORIGIN)
    assert response.status_code == 400 and not response.cookies


def test_json_answer_for_the_banner_script(client, demo_site):
    response = choose(client, "save", statistics=True, HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert json.loads(response.content) == {"statistics": True, "personalisation": False, "version": 1}
    assert response.cookies[CONSENT_COOKIE].value == "1.10"
    assert "no-store" in response["Cache-Control"]


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "http://evil.example"])
def test_next_must_stay_on_this_site(client, demo_site, target):
    response = choose(client, "reject", next_url=target)
    assert response.status_code == 303 and response["Location"] == SETTINGS_URL + "?saved=1"


# --- same-origin check instead of a CSRF cookie --------------------------------------------------

@pytest.mark.parametrize("headers", [
    {},  # neither Origin nor Referer
    {"HTTP_ORIGIN": "https://evil.example"},
    {"HTTP_ORIGIN": "null"},
    {"HTTP_ORIGIN": "https://testserver"},  # other scheme
    {"HTTP_REFERER": "https://evil.example/page/"},
    {"HTTP_REFERER": "http://testserver.evil.example/"},
    {"HTTP_ORIGIN": "https://evil.example", "HTTP_REFERER": "http://testserver/"},
])
def test_choice_from_elsewhere_is_refused(client, demo_site, headers):
    response = client.post(SETTINGS_URL, {"action": "accept"}, **headers)
    assert response.status_code == 403
    assert not response.cookies
    assert not tracked().exists()


@pytest.mark.parametrize("headers", [
    {"HTTP_ORIGIN": "http://testserver"},
    {"HTTP_REFERER": "http://testserver/ueber-uns/"},  # a browser that sends no Origin
])
def test_choice_from_this_site_needs_no_csrf_cookie(demo_site, headers):
    client = Client(enforce_csrf_checks=True)
    response = client.post(SETTINGS_URL, {"action": "reject"}, **headers)
    assert response.status_code == 303
    assert set(response.cookies) == {CONSENT_COOKIE}


def test_trusted_origins_are_accepted(client, demo_site, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://www.example.com"]
    response = client.post(SETTINGS_URL, {"action": "reject"}, HTTP_ORIGIN="https://www.example.com")
    assert response.status_code == 303


def test_settings_page_get_changes_nothing(client, demo_site):
    response = client.get(SETTINGS_URL, {"action": "accept"})
    assert response.status_code == 200 and not response.cookies
    assert response["X-Robots-Tag"] == "noindex"
