"""Fixtures and helpers for the cookie banner and first-party tracking (issue 6, T1-T5)."""

import re

import pytest
from bs4 import BeautifulSoup

from inbound.leads import LeadEvent
from tests.gated.conftest import (  # noqa: F401
    asset,
    confirm_path,
    download_path,
    fresh_cache,
    gated_page,
    media_root,
    on_commit,
    purposes,
    submit,
)

SETTINGS_URL = "/inbound/cookies/"
SAME_ORIGIN = {"HTTP_ORIGIN": "http://testserver"}
CONSENT_COOKIE = "inbound_consent"
VISITOR_COOKIE = "inbound_vid"
STANDARD_PAGE = "/ueber-uns/"


def choose(client, action, next_url="/", **extra):
    """Post a banner choice as the banner's plain form does (from a page of this site)."""
    data = {"action": action, "next": next_url}
    for purpose in ("statistics", "personalisation"):
        if extra.pop(purpose, False):
            data[purpose] = "1"
    headers = {**SAME_ORIGIN, **extra}
    return client.post(SETTINGS_URL, data, **headers)


def banner(html):
    """The banner section of a page, or None."""
    return BeautifulSoup(html, "html.parser").find(id="cookie-banner")


def tracked(kind=None, **filters):
    events = LeadEvent.objects.filter(kind__startswith="track.", **filters)
    if kind:
        events = events.filter(kind=kind)
    return events


def views():
    return tracked(LeadEvent.TRACK_VIEW)


def visitor_of(client):
    cookie = client.cookies.get(VISITOR_COOKIE)
    return cookie.value if cookie is not None and cookie.value else None


def is_visitor_id(value):
    return bool(re.fullmatch(r"[0-9a-f]{32}", value or ""))


@pytest.fixture
def accepted(client, demo_site):
    """A test client whose visitor accepted everything in the banner."""
    response = choose(client, "accept")
    assert response.status_code == 303
    return client
