"""The dispatcher's fast path gives the same mails and rows as the plain one, with fewer queries.

- `inbound.bulkmail.BulkMail`: the same bytes as Django's `EmailMultiAlternatives`;
- `inbound.mailframes.FrameCache`: the same text and HTML as rendering the templates, or the
  templates rendered per mail where a frame would not be exact;
- `inbound.links.absolute_url`: the same URLs as `reverse`;
- `inbound.nurture.statements`: the ledger fold of the lock statement, the checks of the
  enrolment lock, a step delivered before; five queries per mail, however large the batch;
- enrolment in chunks.
"""

import email
import re
from datetime import timedelta
from email.policy import compat32
from types import SimpleNamespace
from unittest import mock

import pytest
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from inbound import links
from inbound.bulkmail import BULK_POLICY, BulkMail
from inbound.consent import ConsentEvent, append_events, lead_consent_states, withdraw
from inbound.mailframes import _UNFRAMEABLE, FrameCache
from inbound.mailing import SentMail
from inbound.marketing import marketing_site
from inbound.nurture import enrolment as enrolment_module
from inbound.nurture import statements
from inbound.nurture.clicks import click_token
from inbound.nurture.dispatch import Batch, claim, process_batch
from inbound.nurture.enrolment import enrol_eligible
from inbound.nurture.models import Delivery, Enrolment
from inbound.nurture.rendering import BodyCache, build_step_mail
from inbound.suppression import address_hash
from tests.nurture.conftest import make_confirmed_leads, make_track, paragraph

BOUNDARY = re.compile(rb"={15}\d{19}==")
FIXED = {"Date": "Mon, 30 Nov 2026 12:00:00 -0000", "Message-ID": "<1.2.3@example.org>"}


def mails(cls, **extra):
    long_line = "Lange Zeile ohne Umbruch " * 60  # > 998 characters: quoted-printable
    cases = [
        dict(subject="Schritt 1", from_email="Firma GmbH <news@example.org>", body="Hallo\n",
             html="<p>Hallo</p>"),
        dict(subject="Grüße aus München – Teil 2", from_email="Müller & Söhne GmbH <news@example.org>",
             body="Grüße\n", html="<p>Grüße &amp; mehr</p>"),
        dict(subject="Ein sehr langer Betreff, der weit über achtundsiebzig Zeichen hinausgeht und gefaltet "
                     "wird", from_email="news@example.org", body=long_line, html=f"<p>{long_line}</p>"),
    ]
    for case in cases:
        message = cls(subject=case["subject"], body=case["body"], from_email=case["from_email"],
                      to=["empfaenger@example.org"], headers={
                          **FIXED, "List-Unsubscribe": "<https://example.org/inbound/u/" + "x" * 90 + "/>",
                          "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                          "List-Id": "Firma <newsletter.example.org>", "Precedence": "bulk", **extra})
        message.attach_alternative(case["html"], "text/html")
        yield message


def test_bulk_mail_is_byte_for_byte_what_django_generates():
    for bulk, plain in zip(mails(BulkMail), mails(EmailMultiAlternatives), strict=True):
        ours = bulk.message().as_bytes(linesep="\r\n")
        django = plain.message().as_bytes(linesep="\r\n")
        assert BOUNDARY.sub(b"BOUNDARY", ours) == BOUNDARY.sub(b"BOUNDARY", django)


@pytest.mark.parametrize("name", ["Subject", "List-Unsubscribe", "X-A"])
def test_bulk_policy_folds_every_header_as_compat32_does(name):
    values = []
    for length in range(55, 95):
        values += ["a" * length, ("wort " * 30)[:length], ("wort " * 30)[:length].strip() + " ",
                   " " + "b" * length, "c  d" + "e" * length, "f\tg" + "h" * length, "ä" + "i" * length]
    ours, standard = BULK_POLICY.clone(linesep="\r\n"), compat32.clone(linesep="\r\n")
    for value in values:
        assert ours.fold_binary(name, value) == standard.fold_binary(name, value), value


def test_a_boundary_found_in_a_part_is_never_used():
    [message] = list(mails(BulkMail))[:1]
    taken = 1234567890123456789
    message.alternatives = []
    message.attach_alternative(f"<p>--==============={taken:019d}==</p>", "text/html")
    with mock.patch("inbound.bulkmail.secrets.randbelow", side_effect=[taken, 42]):
        generated = message.message()
    assert generated.get_boundary() == f"==============={42:019d}=="
    parsed = email.message_from_bytes(generated.as_bytes())
    assert [part.get_content_type() for part in parsed.get_payload()] == ["text/plain", "text/html"]
    assert str(taken) in parsed.get_payload()[1].get_payload()


@pytest.mark.django_db
def test_frames_give_exactly_the_rendered_mails(demo_site, confirmed_lead):
    track = make_track(demo_site, steps=2)
    step = track.steps.first()
    step.body = paragraph('Preise &amp; "Angebote" <a href="https://example.org/a?x=1&amp;y=2">hier</a>')
    step.save()
    frames = FrameCache(strings=("unsubscribe_url", "preferences_url", "body_html", "body_text"),
                        objects=("lead",))
    shared = marketing_site(demo_site)
    with mock.patch("django.core.signing.time.time", return_value=1_800_000_000):  # same preference token
        for delivery_id, tracked in ((1, True), (2, False), (3, True)):
            built = [build_step_mail(confirmed_lead, step, delivery_id=delivery_id, tracked=tracked,
                                     cache=BodyCache(), shared=shared, message_id="<m@x>", render=render)
                     for render in (frames.renderer((demo_site.pk, step.pk)), None)]
            assert built[0].body == built[1].body
            assert built[0].alternatives == built[1].alternatives
    assert frames._frames and all(frame is not _UNFRAMEABLE for frame in frames._frames.values())


@pytest.mark.django_db
def test_a_template_that_does_more_than_print_a_per_mail_value_is_rendered_per_mail(settings, tmp_path):
    templates = {
        "framed.html": '<a href="{{ unsubscribe_url }}">x</a> {{ body_html }} {{ body_html|safe }}',
        "upper.txt": "{{ unsubscribe_url|upper }}",
        "lead.txt": "{{ lead.email }}: {{ unsubscribe_url }}",
        "length.txt": "{% if body_html|length > 500 %}lang{% else %}kurz{% endif %}",
    }
    for name, source in templates.items():
        (tmp_path / name).write_text(source)
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]
    frames = FrameCache(strings=("unsubscribe_url", "body_html"), objects=("lead",))
    for url, body in (("https://example.org/u/a:b/", "<b>kurz & gut</b>"),
                      ("https://example.org/u/c:d/", "x" * 900)):
        context = {"unsubscribe_url": url, "body_html": body, "lead": SimpleNamespace(email="a@example.org")}
        for name in templates:
            assert frames.render(name, context, key=1) == render_to_string(name, context), name
    framed = {name for (name, *_rest), frame in frames._frames.items() if frame is not _UNFRAMEABLE}
    assert framed == {"framed.html"}


@pytest.mark.django_db
def test_absolute_urls_are_what_reverse_gives(confirmed_lead):
    base = "https://example.org"
    for name, token in (("inbound:unsubscribe", links.unsubscribe_token(confirmed_lead)),
                        ("inbound:preferences", links.preferences_token(confirmed_lead)),
                        ("inbound:nurture_click", click_token(7, "https://example.org/" + "a" * 300)),
                        ("inbound:unsubscribe", "mit Leerzeichen")):
        assert links.absolute_url(base, name, token) == base + reverse(name, args=[token])


def _enrolled(site, count=1):
    track = make_track(site, steps=2)
    make_confirmed_leads(site, count)
    enrol_eligible(track)
    return track, list(Enrolment.objects.select_related("lead__site").order_by("pk"))


@pytest.mark.django_db
def test_the_lock_statement_folds_the_ledger_as_consent_states_does(demo_site, purposes):
    _track, [item] = _enrolled(demo_site)
    lead = item.lead
    nurture = purposes["nurture"]
    version = nurture.current_version("de")
    for step in ("confirmed", "withdrawn", "requested again", "confirmed again"):
        with transaction.atomic():
            statements.lock_lead(lead)
            states, suppressed = statements.lock_enrolment(item, site_id=lead.site_id,
                                                           address_hash=address_hash(lead.email))
        assert states == lead_consent_states(lead), step
        assert suppressed is False
        with transaction.atomic():
            if step == "confirmed":
                withdraw(lead, [nurture], channel="test")
            elif step == "withdrawn":
                append_events(lead, ConsentEvent.REQUESTED, [(nurture, version)], channel="test")
            elif step == "requested again":
                append_events(lead, ConsentEvent.CONFIRMED, [(nurture, version)], channel="test")
    assert lead_consent_states(lead)[nurture.pk] == ConsentEvent.CONFIRMED


@pytest.mark.django_db
def test_the_enrolment_lock_refuses_an_enrolment_moved_on_meanwhile(demo_site):
    _track, [item] = _enrolled(demo_site)
    Enrolment.objects.filter(pk=item.pk).update(position=0)
    with transaction.atomic():
        assert statements.lock_enrolment(item, site_id=demo_site.pk, address_hash="x") is None
    Enrolment.objects.filter(pk=item.pk).update(position=item.position, status=Enrolment.EXITED)
    with transaction.atomic():
        assert statements.lock_enrolment(item, site_id=demo_site.pk, address_hash="x") is None


@pytest.mark.django_db
def test_a_step_delivered_before_is_not_logged_again_but_the_enrolment_moves_on(demo_site):
    track, [item] = _enrolled(demo_site)
    first, second = track.steps.order_by("sort_order")
    Delivery.objects.create(enrolment=item, step=first, status=Delivery.SENT)
    now = timezone.now()
    advance = statements.Advance(step_id=first.pk, position=first.sort_order, at=now,
                                 next_due_at=now + timedelta(days=2), completed=False)
    with transaction.atomic():
        delivery_id = statements.record_send(item, advance, lead_id=item.lead_id, subject="S",
                                             message_id="<m@x>", template_version="t", tracked=False, now=now,
                                             sent_at=now)
    assert delivery_id is None
    assert not SentMail.objects.exists()
    item.refresh_from_db()
    assert (item.last_step_id, item.position, item.status) == (first.pk, first.sort_order, Enrolment.ACTIVE)
    assert item.next_due_at == now + timedelta(days=2)


@pytest.mark.django_db
def test_a_mail_costs_five_queries_whatever_the_size_of_the_batch(demo_site, mailoutbox):
    """BEGIN, lock the lead, lock the enrolment with the ledger, record (one statement on
    PostgreSQL, three on SQLite), COMMIT; the rest is per batch."""
    per_mail = 5 if connection.vendor == "postgresql" else 7
    track = make_track(demo_site, steps=1)
    counts = {}
    for count in (3, 9):
        make_confirmed_leads(demo_site, count, prefix=f"batch{count}-")
        enrol_eligible(track)
        now = timezone.now()
        with CaptureQueriesContext(connection) as queries:
            ids = claim(now, 100)
            batch = Batch(now)
            result = process_batch(ids, batch)
            batch.close()
        assert result.sent == count
        counts[count] = len(queries)
    assert counts[9] - counts[3] == per_mail * 6, counts
    assert counts[3] <= per_mail * 3 + 25, counts
    assert len(mailoutbox) == 12
    assert Delivery.objects.filter(sent_mail__isnull=False).count() == SentMail.objects.count() == 12


@pytest.mark.django_db
def test_enrolment_inserts_in_chunks_and_counts_the_new_ones(demo_site, monkeypatch):
    monkeypatch.setattr(enrolment_module, "INSERT_CHUNK", 3)
    track = make_track(demo_site, steps=1)
    make_confirmed_leads(demo_site, 7)
    assert enrol_eligible(track) == 7
    assert enrol_eligible(track) == 0
    assert Enrolment.objects.filter(track=track).count() == 7


@pytest.mark.parametrize("address", [
    "anna@example.org", "a.b+c@sub.example.org", "x_y-z@ex-ample.de", "o'brien@example.ie",
    "müller@example.org", "anna@bücher.example", '"quoted local"@example.org', "a..b@example.org",
    ".a@example.org", "anna@-example.org", "Anna <anna@example.org>", "ANNA@EXAMPLE.ORG",
])
def test_the_envelope_recipient_is_what_django_sanitizes(address):
    from django.core.mail.message import sanitize_address

    from inbound.bulkmail import envelope_recipient

    try:
        expected = sanitize_address(address, "utf-8")
    except ValueError:
        with pytest.raises(ValueError):
            envelope_recipient(address, "utf-8")
        return
    assert envelope_recipient(address, "utf-8") == expected
