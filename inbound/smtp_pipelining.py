"""`smtplib.SMTP.sendmail` with client-side ESMTP PIPELINING (RFC 2920), as Postfix's client does it.

Why: the nurture dispatcher sends one mail per transaction over an open `smtplib.SMTP` connection.
`smtplib` waits for the reply to every command, so a mail costs four round trips and four reads:
MAIL FROM, RCPT TO, DATA and the message. RFC 2920 lets a client whose server advertised PIPELINING
in its EHLO reply send a group of commands without waiting: MAIL and RCPT may go anywhere in a
group, DATA only at its end, and the server answers every command in the order it received them.
So `sendmail` below writes MAIL, every RCPT and DATA in one write, reads their replies in order,
then sends the message after the 354 reply: two writes and two waits per mail.

The contract is `smtplib.SMTP.sendmail(from_addr, to_addrs, msg)` without mail/rcpt options: the
same commands and message bytes on the wire, the same return value (the dict of refused
recipients) and the same exceptions (SMTPSenderRefused, SMTPRecipientsRefused, SMTPDataError,
SMTPServerDisconnected, ValueError for CR/LF in an address), and after an error the connection is
reset (RSET) for the next mail, or closed if the server said 421. Servers without PIPELINING, or
without ESMTP, get plain `smtp.sendmail`. All replies of a group are read before deciding, so the
connection stays in step even when the server answers the DATA of a refused transaction.
"""

import functools
import re
from smtplib import (
    CRLF,
    SMTPDataError,
    SMTPRecipientsRefused,
    SMTPSenderRefused,
    SMTPServerDisconnected,
    _fix_eols,
    _quote_periods,
    bCRLF,
    quoteaddr,
)

# A client with blocking writes MUST keep each group of commands within the TCP window (RFC 2920,
# usually at least 4K octets), or client and server can deadlock writing to each other; groups
# larger than this (hundreds of recipients) are split, and the replies to each part are read first.
WINDOW = 4096


_PLAIN = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")


def _quoted(address):
    """`smtplib.quoteaddr(address)`: "<address>" for a plain local@domain without parsing it
    (the parser costs more than the rest of the envelope); others, such as a sender with its
    name ("Firma <news@…>", the same for a whole batch), parsed once."""
    if _PLAIN.fullmatch(address):
        return f"<{address}>"
    return _parsed_and_quoted(address)


@functools.lru_cache(maxsize=256)
def _parsed_and_quoted(address):
    return quoteaddr(address)


def sendmail(smtp, from_addr, to_addrs, msg):
    """Send `msg` (bytes) from `from_addr` to `to_addrs` over the connected `smtplib.SMTP` `smtp`,
    pipelining the envelope; returns {refused recipient: (code, reply)} like `smtp.sendmail`."""
    smtp.ehlo_or_helo_if_needed()
    if not (smtp.does_esmtp and smtp.has_extn("pipelining")):
        return smtp.sendmail(from_addr, to_addrs, msg)
    if isinstance(msg, str):
        msg = _fix_eols(msg).encode("ascii")
    if isinstance(to_addrs, str):
        to_addrs = [to_addrs]
    size = f" size={len(msg)}" if smtp.has_extn("size") else ""
    commands = [f"mail FROM:{_quoted(from_addr)}{size}", *(f"rcpt TO:{_quoted(to)}" for to in to_addrs),
                "data"]
    if any("\r" in command or "\n" in command for command in commands):  # as smtplib's putcmd
        raise ValueError(f"command and arguments contain prohibited newline characters: {commands!r}")
    lines = [(command + CRLF).encode(smtp.command_encoding) for command in commands]  # raises before sending
    replies, lost = _exchange(smtp, lines)

    def abort(error):
        """End the refused transaction (if the connection is still open), then raise `error`."""
        try:
            if len(replies) == len(commands) and replies[-1][0] == 354:  # DATA accepted regardless
                smtp.send(b"." + bCRLF)
                smtp.getreply()
        except SMTPServerDisconnected:
            pass
        smtp._rset()  # ignores a closed connection
        raise error

    if not replies:
        raise lost
    code, resp = replies[0]
    if code != 250:
        abort(SMTPSenderRefused(code, resp, from_addr))
    rcpt_replies = replies[1:1 + len(to_addrs)]
    senderrs = {to: reply for to, reply in zip(to_addrs, rcpt_replies, strict=False)
                if reply[0] not in (250, 251)}
    if rcpt_replies and rcpt_replies[-1][0] == 421:  # the server closed the connection
        raise SMTPRecipientsRefused(senderrs)
    if len(rcpt_replies) < len(to_addrs):
        raise lost
    if len(senderrs) == len(to_addrs):
        abort(SMTPRecipientsRefused(senderrs))
    if len(replies) < len(commands):
        raise lost
    code, resp = replies[-1]
    if code != 354:
        abort(SMTPDataError(code, resp))

    data = _quote_periods(msg)  # exactly what smtplib's data() sends for bytes
    if data[-2:] != bCRLF:
        data += bCRLF
    smtp.send(data + b"." + bCRLF)
    code, resp = smtp.getreply()
    if code != 250:
        if code == 421:
            smtp.close()
        else:
            smtp._rset()
        raise SMTPDataError(code, resp)
    return senderrs


def _exchange(smtp, lines):
    """Send `lines` in groups of at most WINDOW bytes (one write each) and read one reply per line,
    in order. Returns (replies, None), or (replies so far, SMTPServerDisconnected) if the connection
    was lost; stops after a 421 reply (the server is closing; `smtp` is closed)."""
    replies, groups, group, size = [], [], [], 0
    for line in lines:
        if group and size + len(line) > WINDOW:
            groups.append(group)
            group, size = [], 0
        group.append(line)
        size += len(line)
    groups.append(group)
    try:
        for group in groups:
            smtp.send(b"".join(group))
            for _line in group:
                replies.append(smtp.getreply())
                if replies[-1][0] == 421:
                    smtp.close()
                    return replies, None
    except SMTPServerDisconnected as lost:
        return replies, lost
    return replies, None
