"""The "manage my data" form: it mails the preference link to a known address and answers the same
whether or not the address is known (D8). Protected by a honeypot and rate limits (F7)."""

import re

import pytest

from inbound import links, self_service
from inbound.leads import Lead
from inbound.mailing import SentMail
from tests.rights.test_export import ADDRESS

pytestmark = pytest.mark.django_db

URL = "/inbound/meine-daten/"
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


def main(response):
    html = response.content.decode()
    return html.split('<main id="main"', 1)[1].split("</main>", 1)[0]


def ask(client, email, on_commit, remote_addr="198.51.100.23", **extra):
    with on_commit():
        return client.post(URL, {"email": email, "website": "", **extra}, REMOTE_ADDR=remote_addr, **EN)


def preferences_link(mail):
    match = re.search(r"https?://[^/\s]+(/inbound/p/[^\s/]+/)", mail.body)
    assert match, mail.body
    return match.group(1)


def test_form_asks_only_for_the_address(client, demo_site):
    response = client.get(URL, **EN)
    assert response.status_code == 200
    html = main(response)
    assert 'name="email"' in html and "csrfmiddlewaretoken" in html
    assert 'name="website"' in html and 'aria-hidden="true"' in html, "honeypot, hidden"
    assert html.count("<input") == 3  # csrf, email, honeypot


def test_known_and_unknown_addresses_get_the_same_answer(client, confirmed_lead, mailoutbox, on_commit):
    known = ask(client, ADDRESS, on_commit)
    unknown = ask(client, "nobody@example.org", on_commit)
    assert known.status_code == unknown.status_code == 200
    assert main(known) == main(unknown)
    assert "If we store data about this address, we have sent a personal link to it." in main(known)
    assert ADDRESS not in known.content.decode().lower()
    assert len(mailoutbox) == 1, "only the known address got mail"


def test_known_address_gets_exactly_one_mail_with_a_working_link(client, confirmed_lead, mailoutbox,
                                                                  on_commit):
    ask(client, "  MAX.Muster@Example.ORG ", on_commit)  # as typed: spaces and capitals
    (mail,) = mailoutbox
    assert mail.to == [ADDRESS]
    assert mail.subject == "Your preferences and data"
    assert mail.alternatives and mail.alternatives[0][1] == "text/html"
    path = preferences_link(mail)
    assert path in mail.alternatives[0][0]
    assert links.resolve_preferences(path.split("/")[3]) == confirmed_lead
    page = client.get(path, **EN)
    assert page.status_code == 200 and ADDRESS in page.content.decode()
    sent = SentMail.objects.get(lead=confirmed_lead, kind=SentMail.PREFERENCES)
    assert sent.message_id == mail.extra_headers["Message-ID"]


def test_unknown_address_gets_no_mail_and_stores_nothing(client, demo_site, mailoutbox, on_commit):
    response = ask(client, "nobody@example.org", on_commit)
    assert response.status_code == 200
    assert mailoutbox == []
    assert not Lead.objects.exists() and not SentMail.objects.exists()


INVALID = "Please enter a valid e-mail address, e.g. name@example.com."


@pytest.mark.parametrize("email, error", [
    ("not-an-address", INVALID),
    ("max@example.org\nBcc: victim@example.org", INVALID),
    ("", "This field is required."),
])
def test_malformed_address_is_refused_with_a_message(client, confirmed_lead, mailoutbox, on_commit,
                                                    email, error):
    response = ask(client, email, on_commit)
    assert response.status_code == 400
    assert error in main(response)
    assert 'name="email"' in main(response), "the form is shown again"
    assert mailoutbox == []


def test_honeypot_gets_the_normal_answer_and_no_mail(client, confirmed_lead, mailoutbox, on_commit):
    normal = ask(client, "nobody@example.org", on_commit)
    bot = ask(client, ADDRESS, on_commit, website="http://spam.example")
    assert bot.status_code == 200
    assert main(bot) == main(normal)
    assert mailoutbox == []


def test_rate_limit_per_client(client, confirmed_lead, mailoutbox, on_commit):
    for number in range(10):  # ten requests from one network count, whatever the address
        assert ask(client, f"unknown{number}@example.org", on_commit).status_code == 200
    limited = ask(client, ADDRESS, on_commit)
    assert limited.status_code == 200
    assert main(limited) == main(ask(client, "nobody@example.org", on_commit, remote_addr="192.0.2.1"))
    assert mailoutbox == [], "the eleventh request from the network sends nothing"
    ask(client, ADDRESS, on_commit, remote_addr="192.0.2.99")  # another network still can
    assert [m.to for m in mailoutbox] == [[ADDRESS]]


def test_mails_per_address_are_capped_whatever_the_client(client, confirmed_lead, mailoutbox, on_commit):
    """F7: nobody can flood a known address with preference links by switching networks."""
    for number in range(10):
        response = ask(client, ADDRESS, on_commit, remote_addr=f"192.0.{number}.1")
        assert response.status_code == 200
    assert len(mailoutbox) == self_service.PREFERENCE_MAILS_PER_WINDOW == 3
    assert SentMail.objects.filter(lead=confirmed_lead, kind=SentMail.PREFERENCES).count() == len(mailoutbox)


def test_address_known_only_on_another_site_gets_no_mail(client, confirmed_lead, mailoutbox, on_commit):
    from wagtail.models import Site

    other = Site.objects.create(hostname="other.example", port=80, root_page=confirmed_lead.site.root_page)
    Lead.objects.filter(pk=confirmed_lead.pk).update(site=other)
    ask(client, ADDRESS, on_commit)
    assert mailoutbox == []
