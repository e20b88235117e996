"""The dispatcher's per-mail statements, written as SQL (PostgreSQL and SQLite).

The transaction of one mail is the dispatcher's hot path: at a thousand mails a second, building
a query with the ORM costs more CPU than the database spends running it, and every round trip
costs both sides. These are the statements the ORM would send, folded where the order of
events allows it:

1. `lock_lead`: the lead's row, locked (the lock a withdrawal takes, M4), with what the
   send-time check needs of it.
2. `lock_enrolment`: the enrolment's row, locked if it is still where the batch found it, and
   in the same statement the lead's ledger (in order) and whether the address is on the
   suppression list. It starts after `lock_lead` returned, so under READ COMMITTED it sees
   everything committed before the lead's lock was granted; and whatever changes consent or
   suppression takes that lock first (a withdrawal, an erasure), so nothing read here can
   change before this transaction ends. (Reading the ledger in the locking statement itself
   would not do: a statement that waits for a row lock keeps the snapshot it started with.)
3. `record_send`: the mail log row (its Message-ID is made before the mail), the delivery row
   pointing at it (`ON CONFLICT DO NOTHING` on the unique (enrolment, step): no savepoint) and
   the enrolment moved on, before the mail goes out. All three are part of the transaction,
   which commits only after the SMTP server accepted the mail and rolls back if it did not, so
   their order within it changes nothing for anyone else. On PostgreSQL it is one statement
   (data-modifying CTEs), on SQLite three.
"""

from datetime import UTC
from typing import NamedTuple

from django.db import connection
from django.utils.dateparse import parse_datetime

from ..consent import ConsentEvent, consent_states
from ..leads import Lead
from ..mailing import SentMail
from ..suppression import SuppressionEntry
from .models import Delivery, Enrolment


class _Event(NamedTuple):
    """A ledger row as `consent.consent_states` folds it."""

    purpose_id: int
    kind: str


class Advance(NamedTuple):
    """Where an enrolment goes after a step: due again at `next_due_at`, or completed."""

    step_id: int
    position: int
    at: object  # the time the step was handled
    next_due_at: object
    completed: bool


def _table(model):
    return connection.ops.quote_name(model._meta.db_table)


def _q(column):
    return connection.ops.quote_name(column)


def _value(value):
    """A datetime as the backend stores it (raw SQL gets no field conversion)."""
    if hasattr(value, "tzinfo"):
        return connection.ops.adapt_datetimefield_value(value)
    return value


def _datetime(value):
    """A datetime column as read by raw SQL: SQLite returns text (UTC, without zone)."""
    if isinstance(value, str):
        parsed = parse_datetime(value)
        return parsed.replace(tzinfo=UTC) if parsed and parsed.tzinfo is None else parsed
    return value


def lock_lead(lead):
    """Lock the lead's row and refresh `lead` from it; False if the lead no longer exists."""
    for_update = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT email, {_q('key')}, restricted_at, objected_at FROM {_table(Lead)} "
                       f"WHERE id = %s{for_update}", [lead.pk])
        row = cursor.fetchone()
    if row is None:
        return False
    lead.email, lead.key = row[0], row[1]
    lead.restricted_at, lead.objected_at = _datetime(row[2]), _datetime(row[3])
    return True


def lock_enrolment(item, *, site_id, address_hash):
    """Lock the enrolment if it is active and unchanged since the batch read it.

    Returns None if it is not (another dispatcher or an edit moved it on), else
    `(states, suppressed)`: the lead's ledger folded by `consent.consent_states`, the fold every
    consent check uses, and whether the address is on the suppression list.
    """
    last_step = "e.last_step_id IS NULL" if item.last_step_id is None else "e.last_step_id = %s"
    for_update = " FOR UPDATE OF e" if connection.features.has_select_for_update_of else ""
    sql = (f"SELECT c.purpose_id, c.kind, EXISTS (SELECT 1 FROM {_table(SuppressionEntry)} "
           f"WHERE site_id = %s AND address_hash = %s) "
           f"FROM {_table(Enrolment)} e LEFT JOIN {_table(ConsentEvent)} c ON c.lead_id = e.lead_id "
           f"WHERE e.id = %s AND e.{_q('status')} = %s AND e.{_q('position')} = %s AND {last_step} "
           f"ORDER BY c.seq{for_update}")
    params = [site_id, address_hash, item.pk, Enrolment.ACTIVE, item.position]
    if item.last_step_id is not None:
        params.append(item.last_step_id)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not rows:
        return None
    events = [_Event(purpose_id, kind) for purpose_id, kind, _suppressed in rows if purpose_id is not None]
    return consent_states(events), bool(rows[0][2])


def _sent_mail_insert():
    return (f"INSERT INTO {_table(SentMail)} (lead_id, kind, subject, message_id, template_version, sent_at) "
            f"VALUES (%s, %s, %s, %s, %s, %s) RETURNING id")


def _delivery_insert(values):
    return (f"INSERT INTO {_table(Delivery)} (enrolment_id, step_id, {_q('status')}, sent_mail_id, tracked, "
            f"detail, created_at) {values} ON CONFLICT (enrolment_id, step_id) DO NOTHING RETURNING id")


def _advance_update():
    return (f"UPDATE {_table(Enrolment)} SET last_step_id = %s, {_q('position')} = %s, last_step_at = %s, "
            f"attempts = 0, last_error = '', claimed_until = NULL, next_due_at = %s, {_q('status')} = %s, "
            f"ended_at = %s WHERE id = %s")


def _advance_params(enrolment_id, advance):
    status = Enrolment.COMPLETED if advance.completed else Enrolment.ACTIVE
    return [advance.step_id, advance.position, _value(advance.at), _value(advance.next_due_at), status,
            _value(advance.at) if advance.completed else None, enrolment_id]


def record_send(item, advance, *, lead_id, subject, message_id, template_version, tracked, now, sent_at):
    """Log the mail, add its delivery row and move the enrolment on. Returns the delivery id,
    or None if the step had a delivery already (then nothing is logged; the enrolment still
    moves on, as the step has been handled)."""
    sent_mail = [lead_id, SentMail.MARKETING, subject[:255], message_id[:255], template_version,
                 _value(sent_at)]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            from_s = "SELECT %s, %s, %s, s.id, %s, '', %s FROM s"
            cursor.execute(
                f"WITH s AS ({_sent_mail_insert()}), d AS ({_delivery_insert(from_s)}), "
                f"a AS ({_advance_update()}) SELECT (SELECT id FROM s), (SELECT id FROM d)",
                [*sent_mail, item.pk, advance.step_id, Delivery.SENT, tracked, _value(now),
                 *_advance_params(item.pk, advance)])
            sent_mail_id, delivery_id = cursor.fetchone()
        else:
            cursor.execute(_sent_mail_insert(), sent_mail)
            sent_mail_id = cursor.fetchone()[0]
            cursor.execute(_delivery_insert("VALUES (%s, %s, %s, %s, %s, '', %s)"),
                           [item.pk, advance.step_id, Delivery.SENT, sent_mail_id, tracked, _value(now)])
            row = cursor.fetchone()
            delivery_id = row[0] if row else None
            cursor.execute(_advance_update(), _advance_params(item.pk, advance))
        if delivery_id is None:
            cursor.execute(f"DELETE FROM {_table(SentMail)} WHERE id = %s", [sent_mail_id])
    return delivery_id


def advance_enrolment(item, advance):
    with connection.cursor() as cursor:
        cursor.execute(_advance_update(), _advance_params(item.pk, advance))
