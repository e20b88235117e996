"""Fixtures for end-to-end tests: a real SMTP server on 127.0.0.1 and headless Chromium.

The gated-page fixtures are reused from tests/gated (pytest only loads conftest files from a
test's own folder and its parents, so they are imported here; `media_root` and `fresh_cache`
stay autouse).
"""

import email
import email.policy
import os
import re
import socket
import threading
from dataclasses import dataclass
from html import unescape
from urllib.parse import urlsplit

import pytest
from aiosmtpd.controller import Controller
from django.db import connections

from tests.gated.conftest import asset, fresh_cache, gated_page, media_root, purposes  # noqa: F401
from tests.helpers import wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]

CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken"\s+value="([^"]+)"')
H1 = re.compile(r"<h1[^>]*>(.*?)</h1>", re.DOTALL)


# --- plain HTTP helpers ---------------------------------------------------------------------

def csrf_token(html):
    """The CSRF token of the (first) form in a page."""
    match = CSRF_INPUT.search(html)
    assert match, f"no csrf token in the page:\n{html[:3000]}"
    return match.group(1)


def heading(html):
    """The text of the page's <h1>, or None."""
    match = H1.search(html)
    return " ".join(unescape(re.sub(r"<[^>]+>", "", match.group(1))).split()) if match else None


def on_live_server(url, live_server):
    """The same path on the live server: links in mails point at the Wagtail Site's host."""
    parts = urlsplit(url)
    return live_server.url + parts.path + (f"?{parts.query}" if parts.query else "")


# --- SMTP -----------------------------------------------------------------------------------

def free_port():
    """A TCP port on 127.0.0.1 with nothing listening on it (at the time of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def point_django_at_smtp(settings, port):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 10


@dataclass
class ReceivedMail:
    """One message as the SMTP server received it: envelope and parsed content."""

    mail_from: str
    rcpt_tos: list
    raw: bytes

    @property
    def message(self):
        return email.message_from_bytes(self.raw, policy=email.policy.default)


class RecordingHandler:
    """An aiosmtpd handler that keeps every envelope it accepts."""

    def __init__(self):
        self._lock = threading.Lock()
        self._received = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        raw = envelope.original_content or envelope.content
        with self._lock:
            self._received.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), bytes(raw)))
        return "250 Message accepted for delivery"

    @property
    def received(self):
        with self._lock:
            return list(self._received)


class SmtpServer:
    """A real SMTP server on 127.0.0.1, run in-process by aiosmtpd in its own thread."""

    def __init__(self):
        self.handler = RecordingHandler()
        self.controller = None
        self.port = None

    def start(self, attempts=5):
        last_error = None
        for _attempt in range(attempts):  # the free port may be taken between asking and binding
            port = free_port()
            controller = Controller(self.handler, hostname="127.0.0.1", port=port,
                                    server_hostname="smtp.test", ready_timeout=10)
            try:
                controller.start()
            except Exception as exc:  # noqa: BLE001 - retried with another port
                last_error = exc
                continue
            self.controller, self.port = controller, port
            return self
        raise RuntimeError(f"could not start the SMTP server: {last_error!r}")

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def received(self):
        return self.handler.received

    def wait_for(self, count, timeout=15):
        """Wait until at least `count` mails have arrived; return all of them."""
        wait_until(lambda: len(self.received) >= count, timeout=timeout, interval=0.05)
        received = self.received
        assert len(received) >= count, f"expected {count} mail(s), the SMTP server got {len(received)}"
        return received


@pytest.fixture
def smtp_server_factory(settings):
    """Start real SMTP servers; each started one becomes Django's mail server. Stopped afterwards."""
    servers = []

    def start():
        server = SmtpServer().start()
        servers.append(server)
        point_django_at_smtp(settings, server.port)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def smtp_server(smtp_server_factory):
    """A running SMTP server on 127.0.0.1 that Django sends all mail to."""
    return smtp_server_factory()


@pytest.fixture
def smtp_down(settings):
    """Django's mail server is a port on 127.0.0.1 where nothing listens. Returns the port."""
    port = free_port()
    point_django_at_smtp(settings, port)
    return port


# --- browser --------------------------------------------------------------------------------

@pytest.fixture
def browser(transactional_db, live_server, monkeypatch):
    """Headless Debian Chromium through Playwright (the browser Playwright downloads is not used).

    Skipped when Chromium is missing, unless REQUIRE_BROWSER=1 (CI), which makes it an error.

    While Playwright's sync API is alive it marks an asyncio loop as running in this thread, so
    Django treats the test thread as async: ORM calls need DJANGO_ALLOW_ASYNC_UNSAFE, and they
    use a separate set of database connections. Hence this fixture is function-scoped and
    depends on the database and the live server, which are therefore set up (and the database
    restored from its serialized copy) before Playwright starts and flushed after it stopped;
    the connections opened while it ran are closed here.
    """
    problem = None
    if not os.path.exists(CHROMIUM):
        problem = f"{CHROMIUM} not found (apt-get install chromium)"
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as exc:
            problem = f"the playwright package is not installed ({exc})"
    if problem:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but the browser tests cannot run: {problem}", pytrace=False)
        pytest.skip(f"browser tests skipped: {problem}")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
            connections.close_all()


@pytest.fixture
def english_page(browser):
    """A fresh browser tab whose context asks for English (Accept-Language: en-US)."""
    context = browser.new_context(locale="en-US")
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    context.close()
