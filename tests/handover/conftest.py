"""Fixtures for the hand-over to sales: a site with an MQL threshold, leads that cross it, a real
HTTP receiver for the webhook (http.server on 127.0.0.1 in a thread) and the SMTP sink."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from inbound.leads import Lead, LeadEvent
from inbound.scoring.engine import recompute
from inbound.scoring.models import ScoringRule, ScoringSettings
from tests.gated.conftest import (  # noqa: F401
    asset,
    confirm_path,
    fresh_cache,
    gated_page,
    media_root,
    on_commit,
    purposes,
    submit,
)
from tests.nurture.conftest import Clock, clock, make_track, sink  # noqa: F401
from tests.scoring.conftest import answer, event, give_consent, make_leads, rule

SALES = "vertrieb@example.com"
SECRET = "s3cr3t-" + "x" * 40
THRESHOLD = 50


@pytest.fixture
def site(demo_site):
    return demo_site


@pytest.fixture
def configured(site, gated_page):  # noqa: F811
    """Threshold 50; a download gives 40, a click in a nurture mail 15 (engagement), the answer
    "Firma: ACME" 20 (fit). A sales address is set; no webhook unless a test sets one."""
    from inbound.nurture.clicks import NURTURE_CLICK

    settings = ScoringSettings.for_site(site)
    settings.mql_threshold = THRESHOLD
    settings.sales_email = SALES
    settings.save()
    rule(site, ScoringRule.DOWNLOAD, 40, name="E-Book geladen")
    rule(site, ScoringRule.CLICK, 15, name="Klick im Newsletter")
    rule(site, ScoringRule.ANSWER, 20, field_name="firma", values="ACME", name="Zielkunde")
    assert NURTURE_CLICK
    return settings


def set_webhook(site, url, secret=SECRET):
    settings = ScoringSettings.for_site(site)
    settings.webhook_url, settings.webhook_secret = url, secret
    settings.save()
    return settings


def qualify(site, page, email="max", *, consents=("tracking", "email-nurture"), phone="+49 170 5550199",
            synthetic=False):
    """A confirmed lead with the given consents, an answer "Firma: ACME" (and a phone number),
    a download and a nurture click: 75 points, over the threshold once recomputed (which the
    caller does, so it can capture what happens)."""
    lead = make_leads(site, 1, prefix=email, tracking=False)[0]
    if consents:
        give_consent([lead], *consents)
    if synthetic:
        Lead.objects.filter(pk=lead.pk).update(synthetic=True)
    answer(lead, page, firma="ACME", telefon=phone)
    event(lead, LeadEvent.DOWNLOAD, page=page, days_ago=1)
    from inbound.nurture.clicks import NURTURE_CLICK

    event(lead, NURTURE_CLICK)
    return lead


def make_mql(site, page, email="max", **kwargs):
    lead = qualify(site, page, email, **kwargs)
    recompute(Lead.objects.filter(pk=lead.pk))
    lead.refresh_from_db()
    return lead


# --- a real HTTP receiver ------------------------------------------------------------------------

class Receiver:
    """Records every POST (headers and raw body); answers with the next status of `statuses`
    (the last one repeats), 204 by default."""

    def __init__(self):
        self.requests = []
        self.statuses = [204]
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.requests.append({"headers": dict(self.headers.items()), "body": body,
                                              "path": self.path})
                    index = min(len(receiver.requests) - 1, len(receiver.statuses) - 1)
                    status = receiver.statuses[index]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/inbound"

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def payloads(self):
        return [json.loads(request["body"]) for request in self.requests]


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()
