"""`inbound.presigning` makes exactly the tokens Django's signing makes, and Django reads them."""

import random
import string
import time

import pytest
from django.core import signing

from inbound import links
from inbound.nurture import clicks
from inbound.presigning import Presigner

ALPHABET = string.ascii_letters + string.digits + "äöüß€ \"'\\/<>&:.-_"


def _payloads(count):
    generator = random.Random(8)
    for _ in range(count):
        text = "".join(generator.choice(ALPHABET) for _ in range(generator.randrange(0, 300)))
        yield [generator.randrange(1, 10**9), text]


@pytest.mark.parametrize("compress", [False, True])
def test_the_tokens_are_byte_for_byte_what_django_makes(compress, settings, monkeypatch):
    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.7)  # one timestamp for both
    settings.SECRET_KEY = "test-secret-" + "x" * 40
    untimed, timed = Presigner("some.salt"), Presigner("some.salt", timestamped=True)
    for payload in _payloads(300):
        expected = signing.Signer(salt="some.salt").sign_object(payload, compress=compress)
        assert untimed.sign_object(payload, compress=compress) == expected
        token = timed.sign_object(payload, compress=compress)
        assert token == signing.dumps(payload, salt="some.salt", compress=compress)
        assert signing.loads(token, salt="some.salt", max_age=60) == payload
        assert signing.Signer(salt="some.salt").unsign_object(untimed.sign_object(payload)) == payload


def test_another_salt_or_secret_makes_a_token_django_refuses(settings):
    token = Presigner("a.salt").sign_object([1, "key"])
    with pytest.raises(signing.BadSignature):
        signing.Signer(salt="b.salt").unsign_object(token)
    settings.SECRET_KEY = "another-secret-" + "y" * 40
    with pytest.raises(signing.BadSignature):
        signing.Signer(salt="a.salt").unsign_object(token)
    fresh = Presigner("a.salt").sign_object([1, "key"])
    assert signing.Signer(salt="a.salt").unsign_object(fresh) == [1, "key"]


def test_link_and_click_tokens_resolve_with_the_standard_reader():
    url = "https://example.org/ratgeber/einwilligung?x=1&y=ä"
    assert clicks.resolve(clicks.click_token(42, url)) == (42, url)
    assert signing.loads(clicks.click_token(42, url), salt=clicks.SALT) == [42, url]

    class Lead:
        pk, key = 7, "k" * 32

    unsubscribe = signing.Signer(salt=links.UNSUBSCRIBE_SALT).unsign_object(links.unsubscribe_token(Lead))
    assert unsubscribe == [7, "k" * 32]
    preferences = signing.loads(links.preferences_token(Lead), salt=links.PREFERENCES_SALT, max_age=60)
    assert preferences == [7, "k" * 32]
