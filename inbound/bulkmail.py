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

`message_bytes(message)` goes one step further for the shape of every nurture mail (a text body
and one HTML alternative, no attachments, UTF-8): it writes the bytes the generator would write
for it directly, without building the MIME objects at all (which cost about as much again as
serialising them): the headers in Django's order, each folded by `BulkPolicy` exactly as the
generator folds it, and the two parts with their line breaks made CRLF. Any other shape, and a
body with a line longer than RFC 5322 allows (Django then encodes it quoted-printable), goes
through `BulkMail.message()`.

`send(message, backend)` hands a message to an open SMTP backend as Django's does, without
parsing the sender's and the recipient's address anew for every mail: the sender is the same
for a whole batch (cached), and a plain `local@domain` recipient in dot-atom form is exactly
what `sanitize_address` would return. Anything else goes through `sanitize_address`, and any
backend other than SMTP through `message.send()`. Over SMTP the envelope is pipelined where the
server allows it (`smtp_pipelining`: two round trips per mail instead of four).

Byte-for-byte equality with the standard generator (boundary and date aside) is what
`tests/nurture/test_fast_path.py` checks.
"""

import functools
import re
import secrets
import time
from email.policy import Compat32
from email.utils import formatdate, make_msgid

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.core.mail.message import (
    DNS_NAME,
    RFC5322_EMAIL_LINE_LENGTH_LIMIT,
    forbid_multi_line_headers,
    sanitize_address,
)

from . import smtp_pipelining

# A header line of up to this many characters is never folded by the standard policy (which
# folds beyond 78): one less, to stay clear of any off-by-one at the limit.
SHORT_HEADER = 77


def _written_as_is(name, value):
    """Whether "name: value" is a line the standard folding leaves exactly as it is: short plain
    ASCII, nothing for it to fold or tidy."""
    return (value.isascii() and value.isprintable() and value == value.strip() and "  " not in value
            and len(name) + 2 + len(value) <= SHORT_HEADER)


class BulkPolicy(Compat32):
    """`compat32`, with short plain ASCII header lines written without `Header` folding."""

    def _fold(self, name, value, sanitize):
        if isinstance(value, str) and _written_as_is(name, value):
            return f"{name}: {value}{self.linesep}"
        return super()._fold(name, value, sanitize)


BULK_POLICY = BulkPolicy()
_CRLF_POLICY = BULK_POLICY.clone(linesep="\r\n")


def _boundary(parts):
    """A random boundary in the generator's own format ("=" * 15, 19 digits, "=="), found in
    none of the `parts`."""
    while True:
        boundary = f"==============={secrets.randbelow(10**19):019d}=="
        if not any(isinstance(part, str) and boundary in part for part in parts):
            return boundary


class BulkMail(EmailMultiAlternatives):
    """An `EmailMultiAlternatives` whose MIME message is generated with `BulkPolicy` and a
    boundary chosen without the generator's regular expression."""

    def message(self):
        message = super().message()
        message.policy = BULK_POLICY
        if message.is_multipart():
            message.set_boundary(_boundary([part.get_payload() for part in message.get_payload()]))
        return message


# --- the bytes of a text + HTML mail, written directly ----------------------------------------

_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # the generator's NLCRE
_DIRECT_HEADERS = {"from", "to", "cc", "reply-to"}  # set by Django from the message's fields


def _fold(name, value):
    return _CRLF_POLICY.fold_binary(name, value)


@functools.lru_cache(maxsize=256)
def _fixed_header(name, value, encoding):
    """A header line that is the same for a whole batch (Subject, From, List-Id, …)."""
    return _fold(*forbid_multi_line_headers(name, value, encoding))


# A value without whitespace or the folding algorithm's split characters (";" and ","), nor
# anything that could start an encoded word: a URL in angle brackets with a signed token.
_UNBREAKABLE = re.compile(r"[A-Za-z0-9_:/.<>-]+")
LONGEST_UNFOLDED = 78  # the standard policy's max_line_length


def _header(name, value, encoding):
    """A per-mail header line (To, Date, Message-ID, List-Unsubscribe, …), as
    `forbid_multi_line_headers` and `BulkPolicy` give it: Django leaves a plain ASCII value alone
    (except Subject, which it always encodes); the policy writes a short one as it is, and puts
    one it cannot break (`_UNBREAKABLE`) that would pass the line length on a line of its own.
    Both are written directly, anything else goes through both."""
    value = str(value)
    if _written_as_is(name, value) and name.lower() != "subject":
        return f"{name}: {value}\r\n".encode()
    if (len(name) + 2 + len(value) > LONGEST_UNFOLDED and name.lower() != "subject"
            and _UNBREAKABLE.fullmatch(value)):
        return f"{name}: \r\n {value}\r\n".encode()
    return _fold(*forbid_multi_line_headers(name, value, encoding))


@functools.lru_cache(maxsize=2)
def _date(second, localtime):
    return formatdate(second, localtime=localtime)


@functools.lru_cache(maxsize=8)
def _part_headers(subtype, cte):
    return (_fold("Content-Type", f'text/{subtype}; charset="utf-8"') + _fold("MIME-Version", "1.0")
            + _fold("Content-Transfer-Encoding", cte) + b"\r\n")


def _has_long_lines(text):
    """Django's test for quoted-printable, `SafeMIMEText.set_payload`; a line of at most a
    quarter of the limit in characters is within it in UTF-8 bytes whatever it holds."""
    lines = text.splitlines()
    if max(map(len, lines), default=0) <= RFC5322_EMAIL_LINE_LENGTH_LIMIT // 4:
        return False
    return any(len(line.encode(errors="surrogateescape")) > RFC5322_EMAIL_LINE_LENGTH_LIMIT for line in lines)


def _part(subtype, text):
    """A text part as `SafeMIMEText` and the generator give it, or None where Django would use
    quoted-printable."""
    if _has_long_lines(text):
        return None
    lines = text.replace("\n", "\r\n") if "\r" not in text else _LINE_BREAK.sub("\r\n", text)
    return _part_headers(subtype, "7bit" if text.isascii() else "8bit") + lines.encode()


@functools.lru_cache(maxsize=1)
def _multipart_header(template_boundary):
    return _fold("Content-Type", f'multipart/alternative; boundary="{template_boundary}"')


def _content_type(boundary):
    """The root's Content-Type line: folded once, as folding depends only on the length of the
    boundary (always 15 + 19 + 2 characters) and not on its digits."""
    template = "=" * 15 + "0" * 19 + "=="
    return _multipart_header(template).replace(template.encode(), boundary.encode())


def _direct_shape(message):
    """Whether `message_bytes` can write `message` itself."""
    encoding = message.encoding or settings.DEFAULT_CHARSET
    alternatives = message.alternatives
    return (encoding.lower() == "utf-8" and message.content_subtype == "plain" and not message.attachments
            and isinstance(message.body, str) and message.body and len(alternatives) == 1
            and alternatives[0].mimetype == "text/html" and isinstance(alternatives[0].content, str)
            and message.to and not message.cc and not message.reply_to
            and not any(name.lower() in _DIRECT_HEADERS for name in message.extra_headers))


def message_bytes(message):
    """`message.message().as_bytes(linesep="\r\n")` for a `BulkMail`, written directly where the
    shape allows it (see the module docstring)."""
    if not _direct_shape(message):
        return message.message().as_bytes(linesep="\r\n")
    text, html = message.body, message.alternatives[0].content
    try:
        parts = [_part("plain", text), _part("html", html)]
    except UnicodeEncodeError:
        parts = [None]
    if None in parts:
        return message.message().as_bytes(linesep="\r\n")
    boundary = _boundary([text, html])
    headers = [_content_type(boundary), _fold("MIME-Version", "1.0"),
               _fixed_header("Subject", str(message.subject), "utf-8"),
               _fixed_header("From", str(message.from_email), "utf-8"),
               _header("To", ", ".join(str(address) for address in message.to), "utf-8")]
    names = {name.lower() for name in message.extra_headers}
    if "date" not in names:
        # `formatdate()` of now, which names whole seconds: once per second
        headers.append(_header("Date", _date(int(time.time()), settings.EMAIL_USE_LOCALTIME), "utf-8"))
    if "message-id" not in names:
        headers.append(_header("Message-ID", make_msgid(domain=DNS_NAME), "utf-8"))
    headers += [_header(name, value, "utf-8") for name, value in message.extra_headers.items()]
    delimiter = f"--{boundary}\r\n".encode()
    return b"".join([*headers, b"\r\n", delimiter, parts[0], b"\r\n", delimiter, parts[1],
                     f"\r\n--{boundary}--\r\n".encode()])


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
    smtp_pipelining.sendmail(backend.connection, _sender(message.from_email, encoding),
                             [envelope_recipient(address, encoding) for address in message.recipients()],
                             message_bytes(message))
    return 1

