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

On PostgreSQL `lock_for_send` runs 1. and 2. in ONE round trip, with the transaction's BEGIN:
psycopg's pipeline mode sends BEGIN, the lead's lock and the enrolment's lock together and
reads the three results at once; with the BEGIN goes `SET LOCAL synchronous_commit TO off`
unless INBOUND_NURTURE_SYNCHRONOUS_COMMIT (docs/decisions.md says what that trades). The
locks stay two statements: the server runs the messages of a pipeline one after the other, so
the second statement is bound (and takes its READ COMMITTED snapshot) only after the first has
its row lock, exactly as above. The per-mail statements (`lock_for_send`, `record_send`) go
through psycopg cursors of Django's own connection that bind on the server (`Cursors`, kept for
a batch by the dispatcher (`Batch.cursors`); not wrapped by Django, whose wrappers cost as
much CPU as the statement: they are in `connection.queries` and `CaptureQueriesContext` all the
same, and their errors are Django's), so psycopg prepares them: the server parses and plans
each of them once per connection instead of once per mail. That is three round trips per mail
(BEGIN + locks, record, COMMIT) instead of five. Django disables prepared statements by
default, for poolers such as PgBouncer in transaction mode before 1.21: these statements are
prepared unless the database's OPTIONS set "prepare_threshold" (None: never; a number: after
that many executions, as for every statement then). On SQLite, `lock_for_send` is `lock_lead`
and then `lock_enrolment`.
"""

import functools
import time
from contextlib import contextmanager
from datetime import UTC
from typing import NamedTuple

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.transaction import TransactionManagementError
from django.utils.dateparse import parse_datetime

from ..consent import ConsentEvent, consent_states
from ..leads import Lead
from ..mailing import SentMail
from ..suppression import SuppressionEntry, is_suppressed
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


@functools.cache
def _q(name):
    """A quoted table or column name (the same quoting on PostgreSQL and SQLite); cached, as the
    statements are built for every mail."""
    return connection.ops.quote_name(name)


def _table(model):
    return _q(model._meta.db_table)


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


@functools.cache  # the statements' text depends on the database backend only, as `_q`
def lock_lead_sql():
    for_update = " FOR UPDATE" if connection.features.has_select_for_update else ""
    return (f"SELECT email, {_q('key')}, restricted_at, objected_at FROM {_table(Lead)} "
            f"WHERE id = %s{for_update}")


def _refresh_lead(lead, row):
    if row is None:
        return False
    lead.email, lead.key = row[0], row[1]
    lead.restricted_at, lead.objected_at = _datetime(row[2]), _datetime(row[3])
    return True


def lock_lead(lead):
    """Lock the lead's row and refresh `lead` from it; False if the lead no longer exists."""
    with connection.cursor() as cursor:
        cursor.execute(lock_lead_sql(), [lead.pk])
        return _refresh_lead(lead, cursor.fetchone())


@functools.cache
def _lock_enrolment_text(after_a_step):
    last_step = "e.last_step_id = %s" if after_a_step else "e.last_step_id IS NULL"
    for_update = " FOR UPDATE OF e" if connection.features.has_select_for_update_of else ""
    return (f"SELECT c.purpose_id, c.kind, EXISTS (SELECT 1 FROM {_table(SuppressionEntry)} "
            f"WHERE site_id = %s AND address_hash = %s) "
            f"FROM {_table(Enrolment)} e LEFT JOIN {_table(ConsentEvent)} c ON c.lead_id = e.lead_id "
            f"WHERE e.id = %s AND e.{_q('status')} = %s AND e.{_q('position')} = %s AND {last_step} "
            f"ORDER BY c.seq{for_update}")


def lock_enrolment_sql(item, *, site_id, address_hash):
    params = [site_id, address_hash, item.pk, Enrolment.ACTIVE, item.position]
    if item.last_step_id is not None:
        params.append(item.last_step_id)
    return _lock_enrolment_text(item.last_step_id is not None), params


def _enrolment_found(rows):
    if not rows:
        return None
    events = [_Event(purpose_id, kind) for purpose_id, kind, _suppressed in rows if purpose_id is not None]
    return consent_states(events), bool(rows[0][2])


def lock_enrolment(item, *, site_id, address_hash):
    """Lock the enrolment if it is active and unchanged since the batch read it.

    Returns None if it is not (another dispatcher or an edit moved it on), else
    `(states, suppressed)`: the lead's ledger folded by `consent.consent_states`, the fold every
    consent check uses, and whether the address is on the suppression list.
    """
    with connection.cursor() as cursor:
        cursor.execute(*lock_enrolment_sql(item, site_id=site_id, address_hash=address_hash))
        return _enrolment_found(cursor.fetchall())


def lock_for_send(item, lead, *, site_id, address_hash, cursors=None):
    """`lock_lead` and then `lock_enrolment`, in one round trip with the BEGIN on PostgreSQL.

    `address_hash` is the hash of `lead.email` as the batch read it. Returns None if the lead no
    longer exists (erased meanwhile) or the enrolment moved on, else what `lock_enrolment`
    returns; `lead` is refreshed from its locked row. Should the locked row have another address
    than the one hashed, the suppression list is read again for that one (after the lock).
    Call it in a transaction (`transaction.atomic`), whose end releases the locks; as its first
    statement, so that on PostgreSQL the BEGIN goes with the locks. `cursors` (PostgreSQL): the
    `Cursors` a batch keeps, else new ones.
    """
    if connection.get_autocommit():
        raise TransactionManagementError("lock_for_send() needs a transaction: its locks last until it ends.")
    email = lead.email
    if connection.vendor == "postgresql":
        lead_found, found = _lock_pipelined(item, lead, site_id=site_id, address_hash=address_hash,
                                            cursors=cursors or Cursors.current())
    else:
        lead_found = lock_lead(lead)
        found = lock_enrolment(item, site_id=site_id, address_hash=address_hash) if lead_found else None
    if not lead_found or found is None:
        return None
    if lead.email != email:
        return found[0], is_suppressed(site_id, lead.email)
    return found


@contextmanager
def _preparing(cursors):
    """The psycopg connection of `cursors` preparing what server-binding cursors run (see above)."""
    raw = cursors.raw
    threshold = raw.prepare_threshold
    if threshold is None and "prepare_threshold" not in cursors.db.settings_dict["OPTIONS"]:
        raw.prepare_threshold = 0  # prepared on first use; client-binding cursors never prepare
    try:
        yield raw
    finally:
        raw.prepare_threshold = threshold


class Cursors:
    """Cursors of Django's psycopg connection that bind on the server, so that psycopg prepares
    their statements: one for the lead's lock and the record, one for the enrolment's lock. The
    dispatcher keeps them for a batch (`dispatch.Batch.cursors`); a single call makes its own."""

    def __init__(self, db):
        import psycopg

        self.db = db  # Django's connection itself, not the `connection` proxy (looked up per use)
        self.raw = db.connection
        self.lead = psycopg.Cursor(self.raw)
        self.enrolment = psycopg.Cursor(self.raw)

    @classmethod
    def current(cls, previous=None):
        """Cursors of the connection as it is now: `previous` if they are still its."""
        db = connections[DEFAULT_DB_ALIAS]
        db.close_if_health_check_failed()
        db.ensure_connection()
        db.validate_thread_sharing()
        if previous is not None and previous.db is db and previous.raw is db.connection:
            return previous
        return cls(db)


def _execute(db, cursor, sql, params=None):
    """`cursor.execute`, in Django's query log (`connection.queries`, `CaptureQueriesContext`)
    while Django logs queries on `db`, with the values as Django logs every statement."""
    if not db.queries_logged:
        return cursor.execute(sql, params)
    started = time.monotonic()
    try:
        return cursor.execute(sql, params)
    finally:
        try:
            logged = db.ops.compose_sql(sql, params) if params else sql
        except db.Database.DataError:
            logged = sql
        db.queries_log.append({"sql": logged, "time": f"{time.monotonic() - started:.3f}"})


def _begin_command(raw):
    """The BEGIN psycopg sends for this connection's settings."""
    from psycopg import IsolationLevel

    begin = ["BEGIN"]
    if raw.isolation_level is not None:
        begin.append("ISOLATION LEVEL " + IsolationLevel(raw.isolation_level).name.replace("_", " "))
    if raw.read_only is not None:
        begin.append("READ ONLY" if raw.read_only else "READ WRITE")
    if raw.deferrable is not None:
        begin.append("DEFERRABLE" if raw.deferrable else "NOT DEFERRABLE")
    return " ".join(begin).encode()


ASYNCHRONOUS_COMMIT = b"SET LOCAL synchronous_commit TO off"


def _begin_in(raw, pipeline, settings=()):
    """Queue the transaction's BEGIN (and then `settings`, SET LOCAL commands) at the head of a
    new pipeline, if it has not begun; True if it did.

    psycopg would send the same BEGIN before the first statement, but then sync the pipeline
    and wait for it: one round trip more. The Sync queued after it keeps libpq's transaction
    status from ever reading "idle" again before the pipeline ends (psycopg would then send a
    second BEGIN); the results are read, in order, with the statements' when the pipeline
    ends, and an error in them is raised there as psycopg raises any.
    """
    from psycopg import pq

    queued = getattr(pipeline, "result_queue", None)
    if (raw.autocommit or raw.pgconn.transaction_status != pq.TransactionStatus.IDLE
            or getattr(pipeline, "level", None) != 1 or getattr(pipeline, "command_queue", True)
            or queued is None or queued):
        # No BEGIN to send, not a fresh pipeline, or a psycopg whose pipeline looks different
        # from 3.3's: psycopg's own way (one round trip more; the round-trip test says so).
        return False
    raw.pgconn.send_query_params(_begin_command(raw), None)
    for command in settings:
        raw.pgconn.send_query_params(command, None)
    raw.pgconn.pipeline_sync()
    queued.extend([None] * (len(settings) + 2))
    return True


def _transaction_settings():
    """SET LOCAL commands for a mail's transaction: asynchronous commit unless
    INBOUND_NURTURE_SYNCHRONOUS_COMMIT (see `inbound.conf`)."""
    from .. import conf

    return () if conf.get("INBOUND_NURTURE_SYNCHRONOUS_COMMIT") else (ASYNCHRONOUS_COMMIT,)


def _lock_pipelined(item, lead, *, site_id, address_hash, cursors):
    """BEGIN, the lead's lock and the enrolment's lock in one pipeline: one round trip.

    If this call begins the transaction (the dispatcher's case), the transaction's settings go
    with the BEGIN (`_transaction_settings`); inside a transaction begun before, they are left
    alone: they would last until the outer transaction ends."""
    from psycopg import pq

    raw, db = cursors.raw, cursors.db
    begins = raw.pgconn.transaction_status == pq.TransactionStatus.IDLE
    settings = _transaction_settings() if begins else ()
    with _preparing(cursors), db.wrap_database_errors:
        with raw.pipeline() as pipeline:
            if not _begin_in(raw, pipeline, settings):  # (Django logs the BEGIN of its `atomic`)
                for command in settings:  # psycopg sends its BEGIN first
                    _execute(db, cursors.lead, command)
            _execute(db, cursors.lead, lock_lead_sql(), [lead.pk])
            _execute(db, cursors.enrolment,
                     *lock_enrolment_sql(item, site_id=site_id, address_hash=address_hash))
        # Leaving the pipeline sent a Sync and read every result (an error is raised there).
        return _refresh_lead(lead, cursors.lead.fetchone()), _enrolment_found(cursors.enrolment.fetchall())


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


@functools.cache
def record_cte():
    """`record_send` on PostgreSQL: one statement (data-modifying CTEs); its parameters are the
    mail log row's, then enrolment, step, status, tracked and time of the delivery, then
    `_advance_params`."""
    from_s = "SELECT %s, %s, %s, s.id, %s, '', %s FROM s"
    return (f"WITH s AS ({_sent_mail_insert()}), d AS ({_delivery_insert(from_s)}), "
            f"a AS ({_advance_update()}) SELECT (SELECT id FROM s), (SELECT id FROM d)")


def _sent_mail_row(lead_id, subject, message_id, template_version, sent_at):
    return [lead_id, SentMail.MARKETING, subject[:255], message_id[:255], template_version, _value(sent_at)]


def _record_params(item, advance, *, lead_id, subject, message_id, template_version, tracked, now, sent_at):
    """The parameters of `record_cte()`."""
    return [*_sent_mail_row(lead_id, subject, message_id, template_version, sent_at),
            item.pk, advance.step_id, Delivery.SENT, tracked, _value(now), *_advance_params(item.pk, advance)]


def _sent_mail_delete():
    """The mail log row of a step that had a delivery already (`record_send`)."""
    return f"DELETE FROM {_table(SentMail)} WHERE id = %s"


def record_send(item, advance, *, lead_id, subject, message_id, template_version, tracked, now, sent_at,
                cursors=None):
    """Log the mail, add its delivery row and move the enrolment on. Returns the delivery id,
    or None if the step had a delivery already (then nothing is logged; the enrolment still
    moves on, as the step has been handled). `cursors` as for `lock_for_send`."""
    if connection.vendor == "postgresql":
        cursors = cursors or Cursors.current()
        db = cursors.db
        with _preparing(cursors), db.wrap_database_errors:
            _execute(db, cursors.lead, record_cte(), _record_params(
                item, advance, lead_id=lead_id, subject=subject, message_id=message_id,
                template_version=template_version, tracked=tracked, now=now, sent_at=sent_at))
            sent_mail_id, delivery_id = cursors.lead.fetchone()
    else:
        with connection.cursor() as cursor:
            cursor.execute(_sent_mail_insert(), _sent_mail_row(lead_id, subject, message_id, template_version,
                                                               sent_at))
            sent_mail_id = cursor.fetchone()[0]
            cursor.execute(_delivery_insert("VALUES (%s, %s, %s, %s, %s, '', %s)"),
                           [item.pk, advance.step_id, Delivery.SENT, sent_mail_id, tracked, _value(now)])
            row = cursor.fetchone()
            delivery_id = row[0] if row else None
            cursor.execute(_advance_update(), _advance_params(item.pk, advance))
    if delivery_id is None:
        with connection.cursor() as cursor:
            cursor.execute(_sent_mail_delete(), [sent_mail_id])
    return delivery_id


def advance_enrolment(item, advance):
    with connection.cursor() as cursor:
        cursor.execute(_advance_update(), _advance_params(item.pk, advance))
