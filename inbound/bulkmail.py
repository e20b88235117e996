"""Marketing mail in bulk: the bytes Django's `EmailMultiAlternatives` gives, for less CPU.

Once the database work of a nurture send is lean, Python's email generator is the largest cost
of a mail, and most of it goes into two things that give nothing here:

- every header goes through `email.header.Header` for folding, although most of ours (From,
  To, Date, Message-ID, List-Id, MIME-Version, …) are short ASCII lines that come out exactly
  as they went in. `BulkPolicy` writes those directly and leaves the rest (non-ASCII, long,
  unusual whitespace) to the standard folding;
- a multipart boundary is checked against the whole text of the message by a regular
  expression compiled anew for every boundary. `BulkMail` picks a random boundary (as the
  generator does) and checks it with a substring test of each part, which is stricter.

`send(message, backend)` hands a message to an open SMTP backend as Django's does, without
parsing the sender's and the recipient's address anew for every mail: the sender is the same
for a whole batch (cached), and a plain `local@domain` recipient in dot-atom form is exactly
what `sanitize_address` would return. Anything else goes through `sanitize_address`, and any
backend other than SMTP through `message.send()`.

Byte-for-byte equality with the standard generator (boundary and date aside) is what
`tests/nurture/test_fast_path.py` checks.
"""

import functools
import re
import secrets
from email.policy import Compat32

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.core.mail.message import sanitize_address

# A header line of up to this many characters is never folded by the standard policy (which
# folds beyond 78): one less, to stay clear of any off-by-one at the limit.
SHORT_HEADER = 77


class BulkPolicy(Compat32):
    """`compat32`, with short plain ASCII header lines written without `Header` folding."""

    def _fold(self, name, value, sanitize):
        if (isinstance(value, str) and value.isascii() and value.isprintable() and value == value.strip()
                and "  " not in value and len(name) + 2 + len(value) <= SHORT_HEADER):
            return f"{name}: {value}{self.linesep}"
        return super()._fold(name, value, sanitize)


BULK_POLICY = BulkPolicy()


class BulkMail(EmailMultiAlternatives):
    """An `EmailMultiAlternatives` whose MIME message is generated with `BulkPolicy` and a
    boundary chosen without the generator's regular expression."""

    def message(self):
        message = super().message()
        message.policy = BULK_POLICY
        if message.is_multipart():
            parts = [part.get_payload() for part in message.get_payload()]
            while True:
                # the generator's own format: "=" * 15, 19 digits, "=="
                boundary = f"==============={secrets.randbelow(10**19):019d}=="
                if not any(isinstance(part, str) and boundary in part for part in parts):
                    break
            message.set_boundary(boundary)
        return message


_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
PLAIN_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                           rf"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*")


@functools.lru_cache(maxsize=64)
def _sender(address, encoding):
    return sanitize_address(address, encoding)


def envelope_recipient(address, encoding):
    """What `sanitize_address` gives, without parsing a plain ASCII `local@domain`."""
    if PLAIN_ADDRESS.fullmatch(address):
        return address
    return sanitize_address(address, encoding)


def send(message, backend):
    """Send `message` over `backend` (raising on failure), as `message.send()` would."""
    if not isinstance(backend, SMTPBackend):
        message.connection = backend
        return message.send(fail_silently=False)
    if backend.connection is None:
        backend.open()
    encoding = message.encoding or settings.DEFAULT_CHARSET
    backend.connection.sendmail(_sender(message.from_email, encoding),
                                [envelope_recipient(address, encoding) for address in message.recipients()],
                                message.message().as_bytes(linesep="\r\n"))
    return 1

