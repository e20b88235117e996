"""`inbound.smtp_pipelining.sendmail`: smtplib's `sendmail` contract, with MAIL/RCPT/DATA in one write.

Against real servers on 127.0.0.1: the counting sink of conftest (aiosmtpd) with a handler that
advertises PIPELINING and can refuse senders and recipients, and Postfix's smtp-sink if installed.
Every test asserts on what the server received and on the writes the client made (its socket is
wrapped to count `sendall` calls). Replies that well-behaved servers do not give (354 to the DATA
of a refused transaction, 421, a dropped connection) are played from a socket pair.
"""

import os
import shutil
import smtplib
import socket
import subprocess
import tempfile
import time

import pytest

from inbound.smtp_pipelining import WINDOW, sendmail
from tests.e2e.conftest import free_port
from tests.helpers import wait_until
from tests.nurture.conftest import Sink

pytestmark = pytest.mark.smtp

SENDER = "news@example.org"
MESSAGE = b"From: news@example.org\r\nTo: anna@example.org\r\nSubject: Hallo\r\n\r\nInhalt\r\n"
BODIES = {
    "crlf": MESSAGE,
    "dots": MESSAGE + b".\r\n.Punkt am Anfang\r\n..zwei\r\n. \r\nEnde.\r\n",
    "bare-lf": b"From: news@example.org\nSubject: LF\n\nerste\n.zweite\n\ndritte\n",
    "no-final-eol": MESSAGE + b"ohne Zeilenende",
}


class PipeliningSink(Sink):
    """The counting sink, announcing PIPELINING in EHLO; answers 550 to the senders in `refuse_mail`
    and to the recipients in `refuse_rcpt`, and records every accepted MAIL (address, options)."""

    def __init__(self, pipelining=True):
        super().__init__()
        self.pipelining = pipelining
        self.refuse_mail, self.refuse_rcpt = set(), set()
        self.mail_args = []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        if address in self.refuse_mail:
            return "550 5.7.1 Sender refused"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        with self.lock:
            self.mail_args.append((address, mail_options))
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse_rcpt:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"


class CountingSocket:
    """Wraps a connected socket and records every `sendall` (one entry per write)."""

    def __init__(self, sock):
        self._sock, self.writes = sock, []

    def sendall(self, data, *args):
        self.writes.append(bytes(data))
        return self._sock.sendall(data, *args)

    def __getattr__(self, name):
        return getattr(self._sock, name)


@pytest.fixture
def server():
    sink = PipeliningSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def connect():
    """`connect(port)`: an `smtplib.SMTP` after EHLO whose socket counts writes (quit afterwards)."""
    opened = []

    def open_connection(port):
        smtp = smtplib.SMTP("127.0.0.1", port, timeout=10)
        smtp.ehlo()
        smtp.sock = CountingSocket(smtp.sock)
        opened.append(smtp)
        return smtp

    yield open_connection
    for smtp in opened:
        if smtp.sock is not None:
            smtp.quit()


def envelopes(sink):
    return [(mail.mail_from, mail.rcpt_tos, mail.raw) for mail in sink.mails]


def writes(smtp):
    written = list(smtp.sock.writes)
    smtp.sock.writes.clear()
    return written


# --- against aiosmtpd ----------------------------------------------------------------------------

def test_the_server_advertises_pipelining(server, connect):
    assert connect(server.port).has_extn("pipelining")


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_a_pipelined_mail_arrives_exactly_as_smtplib_sends_it(server, connect, body):
    recipients = ["anna@example.org", "ben@example.org"]
    plain, smtp = connect(server.port), connect(server.port)
    assert plain.sendmail(SENDER, recipients, body) == {}
    assert sendmail(smtp, SENDER, recipients, body) == {}

    by_smtplib, pipelined = server.mails
    assert (by_smtplib.connection, pipelined.connection) == (0, 1)
    assert (pipelined.mail_from, pipelined.rcpt_tos) == (by_smtplib.mail_from, by_smtplib.rcpt_tos)
    assert (SENDER, recipients) == (pipelined.mail_from, pipelined.rcpt_tos)
    assert pipelined.raw == by_smtplib.raw
    if body.endswith(b"\r\n"):  # dot-stuffing undone by the server: the message itself
        assert pipelined.raw == body
    assert server.mail_args == [(SENDER, [f"SIZE={len(body)}"])] * 2
    plain_writes = writes(plain)
    assert writes(smtp) == [b"".join(plain_writes[:-1]), plain_writes[-1]]  # same bytes, 2 writes not 5


def test_the_same_bytes_go_over_the_wire_in_two_writes_instead_of_four(server, connect):
    body = BODIES["dots"]
    plain, smtp = connect(server.port), connect(server.port)
    plain.sendmail(SENDER, ["anna@example.org"], body)
    sendmail(smtp, SENDER, ["anna@example.org"], body)

    plain_writes, pipelined_writes = writes(plain), writes(smtp)
    assert len(plain_writes) == 4
    assert len(pipelined_writes) == 2
    assert pipelined_writes == [b"".join(plain_writes[:3]), plain_writes[3]]
    assert pipelined_writes[0] == (f"mail FROM:<{SENDER}> size={len(body)}\r\n"
                                   "rcpt TO:<anna@example.org>\r\ndata\r\n").encode()
    assert pipelined_writes[1].startswith(b"From: ") and pipelined_writes[1].endswith(b"\r\n.\r\n")
    assert b"\r\n..Punkt am Anfang\r\n...zwei\r\n" in pipelined_writes[1]


def test_several_mails_over_one_connection_arrive_in_order(server, connect):
    smtp = connect(server.port)
    for number in range(20):
        recipient = f"lead{number:02d}@example.org"
        assert sendmail(smtp, SENDER, [recipient], MESSAGE + f"Nummer {number}\r\n".encode()) == {}

    assert [(mail.rcpt_tos, mail.connection) for mail in server.mails] == [
        ([f"lead{number:02d}@example.org"], 0) for number in range(20)]
    assert [mail.raw for mail in server.mails] == [MESSAGE + f"Nummer {n}\r\n".encode() for n in range(20)]
    assert len(writes(smtp)) == 2 * 20


def test_a_refused_sender_raises_and_the_next_mail_goes_through(server, connect):
    server.refuse_mail.add("spam@example.org")
    smtp = connect(server.port)

    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        sendmail(smtp, "spam@example.org", ["anna@example.org"], MESSAGE)
    assert (refused.value.smtp_code, refused.value.sender) == (550, "spam@example.org")
    assert server.mails == [] and server.attempts == 0
    assert writes(smtp)[1:] == [b"rset\r\n"]  # after reading the RCPT and DATA replies

    assert sendmail(smtp, SENDER, ["anna@example.org"], MESSAGE) == {}
    assert envelopes(server) == [(SENDER, ["anna@example.org"], MESSAGE)]


def test_all_recipients_refused_raises_and_the_next_mail_goes_through(server, connect):
    server.refuse_rcpt.update({"gone@example.org", "away@example.org"})
    smtp = connect(server.port)

    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        sendmail(smtp, SENDER, ["gone@example.org", "away@example.org"], MESSAGE)
    assert refused.value.recipients == {"gone@example.org": (550, b"5.1.1 No such user"),
                                        "away@example.org": (550, b"5.1.1 No such user")}
    assert server.attempts == 0
    assert writes(smtp)[1:] == [b"rset\r\n"]  # after reading the DATA reply too

    assert sendmail(smtp, SENDER, ["anna@example.org"], MESSAGE) == {}
    assert envelopes(server) == [(SENDER, ["anna@example.org"], MESSAGE)]


def test_one_refused_recipient_is_returned_and_the_other_gets_the_mail(server, connect):
    server.refuse_rcpt.add("gone@example.org")
    smtp = connect(server.port)

    refused = sendmail(smtp, SENDER, ["gone@example.org", "anna@example.org"], MESSAGE)

    assert refused == {"gone@example.org": (550, b"5.1.1 No such user")}
    assert envelopes(server) == [(SENDER, ["anna@example.org"], MESSAGE)]
    assert sendmail(smtp, SENDER, ["ben@example.org"], MESSAGE) == {}
    assert [mail.rcpt_tos for mail in server.mails] == [["anna@example.org"], ["ben@example.org"]]


def test_a_refused_message_raises_and_the_next_mail_goes_through(server, connect):
    async def refuse_the_first(number, envelope):
        return "554 5.7.1 Message refused" if number == 1 else None

    server.answer = refuse_the_first
    smtp = connect(server.port)

    with pytest.raises(smtplib.SMTPDataError) as refused:
        sendmail(smtp, SENDER, ["anna@example.org"], MESSAGE)
    assert (refused.value.smtp_code, refused.value.smtp_error) == (554, b"5.7.1 Message refused")
    assert server.attempts == 1 and server.mails == []
    assert writes(smtp)[2:] == [b"rset\r\n"]  # as smtplib: envelope, message, then RSET

    assert sendmail(smtp, SENDER, ["ben@example.org"], MESSAGE + b"zweiter\r\n") == {}
    assert envelopes(server) == [(SENDER, ["ben@example.org"], MESSAGE + b"zweiter\r\n")]


def test_a_421_to_mail_closes_the_connection_as_smtplib_does(server, connect):
    async def closing(*args):
        return "421 4.3.2 Shutting down"

    server.handle_MAIL = closing
    smtp = connect(server.port)

    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        sendmail(smtp, SENDER, ["anna@example.org"], MESSAGE)
    assert refused.value.smtp_code == 421
    assert smtp.sock is None


def test_an_address_with_a_newline_raises_before_anything_is_sent(server, connect):
    smtp = connect(server.port)
    with pytest.raises(ValueError, match="newline"):  # as smtplib (whose quoteaddr keeps this CRLF)
        smtp.sendmail(SENDER, ["\r\n"], MESSAGE)
    smtp.rset()  # smtplib had sent MAIL already
    writes(smtp)

    with pytest.raises(ValueError, match="newline"):
        sendmail(smtp, SENDER, ["anna@example.org", "\r\n"], MESSAGE)
    assert writes(smtp) == []
    assert sendmail(smtp, SENDER, ["anna@example.org"], MESSAGE) == {}
    assert envelopes(server) == [(SENDER, ["anna@example.org"], MESSAGE)]


def test_a_server_without_pipelining_gets_plain_smtplib():
    sink = PipeliningSink(pipelining=False).start()
    try:
        smtp = smtplib.SMTP("127.0.0.1", sink.port, timeout=10)
        smtp.ehlo()
        assert not smtp.has_extn("pipelining")
        smtp.sock = CountingSocket(smtp.sock)

        assert sendmail(smtp, SENDER, ["anna@example.org"], BODIES["dots"]) == {}
        assert envelopes(sink) == [(SENDER, ["anna@example.org"], BODIES["dots"])]
        assert len(writes(smtp)) == 4
        smtp.quit()
    finally:
        sink.stop()


def test_helo_without_esmtp_gets_plain_smtplib(server):
    smtp = smtplib.SMTP("127.0.0.1", server.port, timeout=10)
    smtp.helo()
    smtp.sock = CountingSocket(smtp.sock)

    assert sendmail(smtp, SENDER, ["anna@example.org"], MESSAGE) == {}
    assert envelopes(server) == [(SENDER, ["anna@example.org"], MESSAGE)]
    assert len(writes(smtp)) == 4
    smtp.quit()


def test_many_recipients_are_sent_in_groups_that_fit_the_window(server, connect):
    recipients = [f"lead{number:04d}@example.org" for number in range(400)]
    smtp = connect(server.port)

    assert sendmail(smtp, SENDER, recipients, MESSAGE) == {}

    assert envelopes(server) == [(SENDER, recipients, MESSAGE)]
    sent = writes(smtp)
    assert all(len(write) <= WINDOW for write in sent[:-1])
    assert b"".join(sent[:-1]).count(b"rcpt TO:") == 400
    assert len(sent) >= 4  # 400 RCPTs (13 KB) do not fit in one group
    commands = [f"mail FROM:<{SENDER}> size={len(MESSAGE)}", *(f"rcpt TO:<{to}>" for to in recipients),
                "data"]
    assert b"".join(sent[:-1]) == "".join(command + "\r\n" for command in commands).encode()


# --- against Postfix's smtp-sink (it advertises PIPELINING itself) -------------------------------

SMTP_SINK = "/usr/sbin/smtp-sink"


@pytest.fixture
def smtp_sink():
    """A running smtp-sink that appends every mail to a dump file: (port, path of the dump)."""
    if not os.path.exists(SMTP_SINK):
        pytest.skip(f"{SMTP_SINK} is not installed")
    folder = tempfile.mkdtemp(prefix="smtp-sink-")
    os.chmod(folder, 0o777)  # noqa: S103 - smtp-sink drops root privileges to nobody
    port = free_port()
    privileges = ["-u", "nobody"] if os.geteuid() == 0 else []
    command = [SMTP_SINK, *privileges, "-c", "-D", f"{folder}/dump", f"127.0.0.1:{port}", "100"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield port, os.path.join(folder, "dump")
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def dumped(path):
    """The mails in smtp-sink's dump: its envelope lines and the message, without the Received
    header it adds (random id, time stamp)."""
    if not os.path.exists(path):
        return []
    with open(path, "rb") as dump:
        chunks = dump.read().split(b"X-Client-Addr: ")[1:]
    mails = []
    for chunk in chunks:
        head, received, rest = chunk.partition(b"\nReceived: ")
        mails.append(head + b"\n" + rest.split(b"\n", 3)[3] if received else None)
    return mails


def test_smtp_sink_receives_the_same_mails_pipelined_as_from_smtplib(smtp_sink, connect):
    port, dump = smtp_sink
    recipients = ["anna@example.org", "ben@example.org"]
    plain, smtp = connect(port), connect(port)
    assert smtp.has_extn("pipelining")

    for body in BODIES.values():
        assert plain.sendmail(SENDER, recipients, body) == {}
    for body in BODIES.values():
        assert sendmail(smtp, SENDER, recipients, body) == {}

    mails = wait_until(lambda: len(dumped(dump)) == 2 * len(BODIES) and dumped(dump), timeout=10)
    assert mails and None not in mails
    assert mails[:len(BODIES)] == mails[len(BODIES):]
    assert b"X-Rcpt-Args: <anna@example.org>\nX-Rcpt-Args: <ben@example.org>\n" in mails[0]
    assert b"\n.Punkt am Anfang\n..zwei\n" in mails[1]  # dot-stuffing undone by the server
    assert len(writes(plain)) == 5 * len(BODIES) and len(writes(smtp)) == 2 * len(BODIES)


# --- replies well-behaved servers do not give, played from a socket pair -------------------------

@pytest.fixture
def scripted():
    """`scripted(replies)`: an `smtplib.SMTP` after EHLO with PIPELINING whose server end already
    holds `replies`; returns (smtp, read) where read() gives what the client wrote so far."""
    pairs = []

    def make(replies, *, then_close=False):
        client, peer = socket.socketpair()
        pairs.append((client, peer))
        peer.sendall(replies)
        if then_close:
            peer.shutdown(socket.SHUT_WR)
        smtp = smtplib.SMTP()
        smtp.sock, smtp.ehlo_resp, smtp.does_esmtp = client, b"scripted", True
        smtp.esmtp_features = {"pipelining": ""}
        peer.settimeout(1)

        def read():
            received = b""
            peer.setblocking(False)
            try:
                while chunk := peer.recv(65536):
                    received += chunk
            except BlockingIOError:
                pass
            return received

        return smtp, read

    yield make
    for client, peer in pairs:
        client.close()
        peer.close()


def test_a_354_to_the_data_of_a_refused_transaction_is_ended_with_a_lone_dot(scripted):
    smtp, read = scripted(b"250 ok\r\n550 no such user\r\n354 go ahead\r\n554 no valid recipients\r\n"
                          b"250 reset\r\n" b"250 ok\r\n250 ok\r\n354 go ahead\r\n250 queued\r\n")

    with pytest.raises(smtplib.SMTPRecipientsRefused):
        sendmail(smtp, SENDER, ["gone@example.org"], MESSAGE)
    assert read() == b"mail FROM:<news@example.org>\r\nrcpt TO:<gone@example.org>\r\ndata\r\n.\r\nrset\r\n"

    assert sendmail(smtp, SENDER, ["anna@example.org"], MESSAGE) == {}
    assert read() == (b"mail FROM:<news@example.org>\r\nrcpt TO:<anna@example.org>\r\ndata\r\n"
                      + MESSAGE + b".\r\n")


def test_a_421_to_rcpt_closes_and_raises_recipients_refused(scripted):
    smtp, _read = scripted(b"250 ok\r\n250 ok\r\n421 closing\r\n")

    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        sendmail(smtp, SENDER, ["anna@example.org", "ben@example.org", "cleo@example.org"], MESSAGE)
    assert refused.value.recipients == {"ben@example.org": (421, b"closing")}
    assert smtp.sock is None


def test_a_refused_sender_is_reported_even_if_the_server_then_hangs_up(scripted):
    smtp, _read = scripted(b"550 go away\r\n", then_close=True)

    with pytest.raises(smtplib.SMTPSenderRefused):
        sendmail(smtp, SENDER, ["anna@example.org"], MESSAGE)
    assert smtp.sock is None


def test_a_lost_connection_before_data_raises_server_disconnected(scripted):
    smtp, _read = scripted(b"250 ok\r\n250 ok\r\n", then_close=True)

    with pytest.raises(smtplib.SMTPServerDisconnected):
        sendmail(smtp, SENDER, ["anna@example.org"], MESSAGE)


@pytest.mark.parametrize("address", ["a@b.de", "a.b+c@x-y.example.org", "x@y", "a..b@c", ".a@b", "a@b.",
                                     "Name <a@b.de>", "a b@c", "<a@b>", "", "ä@b.de", "a@[1.2.3.4]", "a@b@c",
                                     "\"quoted\"@b.de", "a@b.de "])
def test_the_envelope_address_is_quoted_as_smtplib_quotes_it(address):
    import smtplib

    from inbound.smtp_pipelining import _quoted

    assert _quoted(address) == smtplib.quoteaddr(address)
