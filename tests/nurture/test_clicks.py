"""Click tracking in nurture mails (M7): signed redirects only with tracking consent.

A lead with confirmed tracking consent gets every body link as `/inbound/c/<token>/`; opening it
records the first click on the delivery and a "nurture.click" event, then redirects (302) to
the original URL. A lead without tracking consent gets the plain links. A tampered token is a
404 that goes nowhere. The "clicked the previous mail" condition reads those clicks.
"""

import re
from urllib.parse import urlsplit

import pytest
from django.core import signing

from inbound.consent import withdraw
from inbound.leads import Lead, LeadEvent
from inbound.mailing import site_base_url
from inbound.nurture import clicks
from inbound.nurture.dispatch import dispatch_due
from inbound.nurture.models import Delivery, Enrolment, Step
from tests.gated.conftest import confirm_path, submit
from tests.nurture.conftest import make_track

pytestmark = pytest.mark.django_db

TRACKED = re.compile(r"https?://[^\s\"'<>()]+/inbound/c/[^\s\"'<>()/]+/")
URL = re.compile(r"https?://[^\s\"'<>()]+")


def html_of(mail):
    return mail.alternatives[0][0]


def tracked_links(mail):
    return TRACKED.findall(mail.body), TRACKED.findall(html_of(mail))


def click(client, url):
    return client.get(urlsplit(url).path)


@pytest.fixture
def untracked_lead(client, gated_page, mailoutbox, on_commit):
    """A confirmed lead with marketing consent but no tracking consent."""
    with on_commit():
        submit(client, gated_page, consent_email_nurture="on")
    with on_commit():
        client.post(confirm_path(mailoutbox[0]))
    mailoutbox.clear()
    return Lead.objects.get()


def test_links_are_tracked_with_consent_and_a_click_is_recorded_and_redirected(
        client, confirmed_lead, track, clock, mailoutbox):
    dispatch_due(now=clock.now)
    [mail] = mailoutbox
    in_text, in_html = tracked_links(mail)
    assert len(in_text) == 1 and in_html == in_text, "the one body link, tracked in both parts"
    assert "https://example.org/artikel-1" not in mail.body + html_of(mail)
    for part in (mail.body, html_of(mail)):  # the links the law asks for stay plain
        assert re.search(r"https?://[^\s\"]+/inbound/u/", part) and "/inbound/p/" in part
        assert "/impressum/" in part
    delivery = Delivery.objects.get()
    assert delivery.tracked and delivery.clicked_at is None

    response = click(client, in_text[0])
    assert response.status_code == 302
    assert response["Location"] == "https://example.org/artikel-1"
    assert response["Referrer-Policy"] == "no-referrer"
    delivery.refresh_from_db()
    first_click = delivery.clicked_at
    assert first_click is not None
    event = LeadEvent.objects.get(kind=clicks.NURTURE_CLICK)
    assert event.lead == confirmed_lead
    assert event.data == {"delivery": delivery.pk, "step": delivery.step_id, "track": track.pk}

    assert click(client, in_text[0]).status_code == 302
    delivery.refresh_from_db()
    assert delivery.clicked_at == first_click, "the first click stays"
    assert LeadEvent.objects.filter(kind=clicks.NURTURE_CLICK).count() == 2


def test_without_tracking_consent_the_links_are_plain(untracked_lead, track, clock, mailoutbox):
    dispatch_due(now=clock.now)
    [mail] = mailoutbox
    assert tracked_links(mail) == ([], [])
    assert "https://example.org/artikel-1" in mail.body
    assert 'href="https://example.org/artikel-1"' in html_of(mail)
    assert Delivery.objects.get().tracked is False


def test_a_tampered_token_is_a_404_and_goes_nowhere(client, confirmed_lead, track, clock, mailoutbox):
    dispatch_due(now=clock.now)
    [url] = tracked_links(mailoutbox[0])[0]
    token = urlsplit(url).path.split("/")[-2]
    delivery = Delivery.objects.get()
    signature = token.split(":", 1)[1]
    forgeries = {
        "signature": token[:-2] + ("BB" if token.endswith("AA") else "AA"),
        "target": clicks.click_token(delivery.pk, "https://evil.example/").split(":", 1)[0] + ":" + signature,
        "foreign salt": signing.dumps([delivery.pk, "https://evil.example/"], salt="inbound.unsubscribe",
                                      compress=True),
        "garbage": "not-a-token",
    }
    for name, forged in forgeries.items():
        response = client.get(f"/inbound/c/{forged}/")
        assert response.status_code == 404, name
        assert not response.has_header("Location"), name
        assert b"evil.example" not in response.content, name
    delivery.refresh_from_db()
    assert delivery.clicked_at is None
    assert click(client, url).status_code == 302, "the genuine link still works"
    assert LeadEvent.objects.filter(kind=clicks.NURTURE_CLICK).count() == 1, "only the genuine click"


def test_after_tracking_consent_is_withdrawn_a_click_redirects_but_records_nothing(
        client, confirmed_lead, track, clock, mailoutbox, purposes):
    dispatch_due(now=clock.now)
    [url] = tracked_links(mailoutbox[0])[0]
    withdraw(confirmed_lead, [purposes["tracking"]], channel="test")
    response = click(client, url)
    assert response.status_code == 302 and response["Location"] == "https://example.org/artikel-1"
    assert Delivery.objects.get().clicked_at is None
    assert not LeadEvent.objects.filter(kind=clicks.NURTURE_CLICK).exists()


def test_clicked_previous_mail_condition(client, confirmed_lead, demo_site, clock, mailoutbox):
    track = make_track(demo_site, steps=3)
    for step in track.steps.order_by("sort_order")[1:]:
        step.condition, step.on_condition_fail = Step.CLICKED_PREVIOUS, Step.SKIP
        step.save()
    dispatch_due(now=clock.now)
    click(client, tracked_links(mailoutbox[0])[0][0])
    assert dispatch_due(now=clock.advance(days=2, minutes=1)).sent == 1, "mail 1 was clicked"
    result = dispatch_due(now=clock.advance(days=2, minutes=1))
    assert (result.sent, result.skipped) == (0, 1), "mail 2 was not clicked"
    assert [mail.subject for mail in mailoutbox] == ["Schritt 1", "Schritt 2"]
    assert list(Delivery.objects.order_by("step__sort_order").values_list("status", flat=True)) == [
        Delivery.SENT, Delivery.SENT, Delivery.SKIPPED]
    assert Enrolment.objects.get().status == Enrolment.COMPLETED


def test_not_clicking_ends_the_track_when_the_step_says_so(confirmed_lead, demo_site, clock, mailoutbox):
    track = make_track(demo_site, steps=3)
    second = track.steps.order_by("sort_order")[1]
    second.condition, second.on_condition_fail = Step.CLICKED_PREVIOUS, Step.END
    second.save()
    dispatch_due(now=clock.now)
    result = dispatch_due(now=clock.advance(days=2, minutes=1))
    assert (result.sent, result.ended) == (0, 1)
    assert dispatch_due(now=clock.advance(days=10)).sent == 0
    assert len(mailoutbox) == 1
    enrolment = Enrolment.objects.get()
    assert (enrolment.status, enrolment.exit_reason) == (Enrolment.EXITED, "condition")


def test_links_to_the_site_itself_stay_intact_in_the_text_part(client, confirmed_lead, demo_site, gated_page,
                                                              clock, mailoutbox):
    """A link to the home page is a prefix of every tracked link (same host): rewriting the text
    part must not replace it inside the tracked links already written."""
    track = make_track(demo_site, steps=1)
    step = track.steps.get()
    home = demo_site.root_page.specific
    step.body = [{"type": "paragraph", "value": "<p>Hallo</p>"},
                 {"type": "content_link", "value": {"page": home.pk, "text": "Startseite", "teaser": ""}},
                 {"type": "content_link", "value": {"page": gated_page.pk, "text": "E-Book", "teaser": ""}}]
    step.save()
    dispatch_due(now=clock.now)
    [mail] = mailoutbox
    assert home.full_url == site_base_url(demo_site) + "/"
    one_tracked_link = re.compile(re.escape(site_base_url(demo_site)) + r"/inbound/c/[^/\s]+/")
    for part in (mail.body, html_of(mail)):
        tracked = [url for url in URL.findall(part) if "/inbound/c/" in url]
        assert len(tracked) == 2, part
        for url in tracked:
            assert one_tracked_link.fullmatch(url), f"a broken tracked link: {url}"
        targets = {clicks.resolve(urlsplit(url).path.split("/")[-2])[1] for url in tracked}
        assert targets == {home.full_url, gated_page.full_url}
        assert click(client, tracked[0]).status_code == 302
