"""First-party tracking: only with statistics consent, DNT/GPC honoured, withdrawal stops it."""

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from wagtail.documents import get_document_model
from wagtail.models import Collection

from inbound.cookie_banner import CookieBannerSettings
from inbound.leads import LeadEvent
from tests.tracking.conftest import (
    CONSENT_COOKIE,
    STANDARD_PAGE,
    VISITOR_COOKIE,
    choose,
    confirm_path,
    download_path,
    submit,
    tracked,
    views,
    visitor_of,
)

pytestmark = pytest.mark.django_db


def visit(client, *paths, **headers):
    for path in paths:
        response = client.get(path, **headers)
        assert response.status_code == 200, path
    return response


def test_nothing_is_recorded_before_a_choice(client, demo_site):
    response = visit(client, "/kontakt/", "/", STANDARD_PAGE)
    assert not tracked().exists()
    assert not response.cookies


def test_nothing_is_recorded_after_reject(client, demo_site):
    choose(client, "reject")
    response = visit(client, "/", STANDARD_PAGE)
    assert not tracked().exists()
    assert VISITOR_COOKIE not in response.cookies and VISITOR_COOKIE not in client.cookies


def test_page_views_are_recorded_after_accept(client, demo_site):
    choose(client, "save", statistics=True)
    visitor = visitor_of(client)
    visit(client, "/", STANDARD_PAGE, STANDARD_PAGE)
    recorded = list(views().order_by("pk").values_list("visitor_id", "page__url_path", "lead_id"))
    assert recorded == [(visitor, "/home/", None), (visitor, "/home/ueber-uns/", None),
                        (visitor, "/home/ueber-uns/", None)]
    assert all(event.site_id == demo_site.pk for event in views())


def test_only_served_wagtail_pages_count(client, demo_site):
    choose(client, "accept")
    client.get("/gibt-es-nicht/")
    client.get("/inbound/cookies/")
    client.get("/robots.txt")
    assert not views().exists()


def test_statistics_consent_without_visitor_cookie_gets_a_new_one(client, demo_site):
    choose(client, "save", statistics=True)
    client.cookies.pop(VISITOR_COOKIE)
    response = visit(client, STANDARD_PAGE)
    new_id = response.cookies[VISITOR_COOKIE].value
    assert views().get().visitor_id == new_id


def test_a_leftover_visitor_cookie_is_neither_read_nor_kept(client, demo_site):
    choose(client, "reject")
    client.cookies[VISITOR_COOKIE] = "0" * 32
    response = visit(client, STANDARD_PAGE)
    assert response.cookies[VISITOR_COOKIE]["max-age"] == 0
    assert not tracked().exists()


def test_a_forged_consent_cookie_is_ignored(client, demo_site):
    client.cookies[CONSENT_COOKIE] = "statistics=yes"
    visit(client, STANDARD_PAGE)
    assert not tracked().exists()


@pytest.mark.parametrize("header", ["HTTP_DNT", "HTTP_SEC_GPC"])
def test_privacy_signal_means_no_tracking(client, demo_site, header):
    client.cookies[VISITOR_COOKIE] = "a" * 32  # even an id from elsewhere is not used
    response = visit(client, "/", STANDARD_PAGE, **{header: "1"})
    assert not tracked().exists()
    assert not response.cookies


@pytest.mark.parametrize("header", ["HTTP_DNT", "HTTP_SEC_GPC"])
def test_explicit_choice_wins_over_the_signal(client, demo_site, header):
    choose(client, "save", statistics=True, **{header: "1"})
    visit(client, STANDARD_PAGE, **{header: "1"})
    assert views().count() == 1


def test_withdrawal_stops_recording(client, demo_site):
    choose(client, "accept")
    visit(client, STANDARD_PAGE)
    assert views().count() == 1
    response = choose(client, "reject")
    assert response.cookies[VISITOR_COOKIE]["max-age"] == 0
    visit(client, "/", STANDARD_PAGE, "/kontakt/")
    assert views().count() == 1, "no page view after the withdrawal"


def test_changed_banner_text_pauses_tracking_until_a_new_choice(client, demo_site):
    choose(client, "accept")
    settings_ = CookieBannerSettings.for_site(demo_site)
    settings_.statistics_stored_de = "Andere Daten."
    settings_.save()
    visit(client, STANDARD_PAGE)
    assert not views().exists()
    choose(client, "accept")
    visit(client, STANDARD_PAGE)
    assert views().count() == 1


def test_form_submissions_are_recorded(client, demo_site, on_commit):
    choose(client, "save", statistics=True)
    with on_commit():
        response = client.post("/kontakt/", {"name": "Max", "e_mail": "max@example.org",
                                             "nachricht": "Hallo"})
    assert response.status_code == 200
    submitted = tracked(LeadEvent.TRACK_SUBMIT).get()
    assert submitted.page.url_path == "/home/kontakt/" and submitted.visitor_id == visitor_of(client)
    with on_commit():
        client.post("/kontakt/", {"name": "", "e_mail": "kaputt"})  # invalid: nothing stored or counted
    assert tracked(LeadEvent.TRACK_SUBMIT).count() == 1


def test_form_submissions_without_consent_are_not_recorded(client, demo_site, on_commit):
    with on_commit():
        client.post("/kontakt/", {"name": "Max", "e_mail": "max@example.org", "nachricht": "Hallo"})
    assert not tracked().exists()


def test_public_document_downloads_are_recorded(client, demo_site, media_root):
    document = get_document_model()(title="Preisliste", collection=Collection.get_first_root_node())
    document.file.save("preise.txt", ContentFile(b"Preise"), save=False)
    document.save()
    client.get(document.url)
    assert not tracked().exists()
    choose(client, "save", statistics=True)
    response = client.get(document.url)
    assert response.status_code == 200
    download = tracked(LeadEvent.TRACK_DOWNLOAD).get()
    assert download.data == {"document": document.pk} and download.visitor_id == visitor_of(client)


def test_gated_downloads_are_recorded(client, gated_page, mailoutbox, on_commit):
    choose(client, "save", statistics=True)
    with on_commit():
        submit(client, gated_page)
    with on_commit():
        confirmed = client.post(confirm_path(mailoutbox[0]))
    response = client.get(download_path(confirmed.content.decode()))
    assert response.status_code == 200
    download = tracked(LeadEvent.TRACK_DOWNLOAD).get()
    assert download.page_id == gated_page.pk and download.data == {"document": gated_page.asset_id}
    assert LeadEvent.objects.filter(kind=LeadEvent.DOWNLOAD).count() == 1, "the lead's own record stays"


def test_a_tracked_page_view_writes_in_no_query_of_its_own(client, demo_site, settings):
    """With the buffer, a tracked view costs no more queries than an untracked one."""
    from inbound import tracking

    settings.INBOUND_TRACKING_FLUSH_INTERVAL = 3600
    buffer = tracking.EventBuffer(start_thread=False)
    original, tracking.BUFFER = tracking.BUFFER, buffer
    try:
        choose(client, "reject")
        visit(client, STANDARD_PAGE)
        with CaptureQueriesContext(connection) as untracked:
            visit(client, STANDARD_PAGE)
        choose(client, "accept")
        visit(client, STANDARD_PAGE)
        with CaptureQueriesContext(connection) as tracked_view:
            visit(client, STANDARD_PAGE)
        assert len(tracked_view) == len(untracked)
        assert len(buffer) == 2 and not views().exists()
        assert buffer.flush() == 2
        assert views().count() == 2
    finally:
        tracking.BUFFER = original
