"""One nurture mail's transaction: `mail_transaction(cache)` for the dispatcher's `_send`.

    with mail_transaction(batch.transactions) as mail:
        found = mail.lock_for_send(item, lead, site_id=…, address_hash=…)
        …
        delivery_id = mail.record_send(item, advance, …)
        …send…
    # committed here; an exception rolled it all back

Both kinds are Django's `transaction.atomic()` around the statements of `statements`, sent in
the same order with the same results; they differ in the cursors:

- `_AtomicMail` (SQLite) calls `statements.lock_for_send` and `record_send`, which open a
  cursor through Django for each statement;
- `_RawMail` (PostgreSQL) sends them over psycopg cursors of Django's connection, kept for the
  whole batch (`cache`, a dict the batch owns): BEGIN (with the transaction's settings if this
  transaction is the outermost) and both locks in one pipeline, the record, each prepared.
  That leaves out what Django's cursor wrappers and a new cursor per statement cost, about as
  much CPU as psycopg spends on the statement itself (docs/benchmarks.md, "the floor"). The
  statements are in `connection.queries` while Django logs queries (DEBUG,
  `CaptureQueriesContext`), and their errors are Django's.
"""

import time

from django.db import connection, transaction

from . import statements


def mail_transaction(cache):
    if connection.vendor == "postgresql":
        return _RawMail(cache)
    return _AtomicMail()


class _AtomicMail:
    lock_for_send = staticmethod(statements.lock_for_send)
    record_send = staticmethod(statements.record_send)

    def __enter__(self):
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        return self

    def __exit__(self, *exc_info):
        return self._atomic.__exit__(*exc_info)


class _Cursors:
    """psycopg cursors of one raw connection, binding on the server (so that psycopg prepares
    their statements): one for the lead's lock and the record, one for the enrolment's lock."""

    def __init__(self, raw):
        import psycopg

        self.raw = raw
        self.lead = psycopg.Cursor(raw)
        self.enrolment = psycopg.Cursor(raw)


class _RawMail(_AtomicMail):
    def __init__(self, cache):
        self.cache = cache

    def __enter__(self):
        super().__enter__()
        return self

    def _cursors(self):
        connection.ensure_connection()
        raw = connection.connection
        cursors = self.cache.get("cursors")
        if cursors is None or cursors.raw is not raw:
            cursors = self.cache["cursors"] = _Cursors(raw)
        return cursors

    def _execute(self, cursor, sql, params=None):
        """`cursor.execute`, in Django's query log while it logs."""
        if not connection.queries_logged:
            return cursor.execute(sql, params)
        started = time.monotonic()
        try:
            return cursor.execute(sql, params)
        finally:
            connection.queries_log.append({"sql": connection.ops.compose_sql(sql, params) if params else sql,
                                           "time": f"{time.monotonic() - started:.3f}"})

    def lock_for_send(self, item, lead, *, site_id, address_hash):
        """`statements.lock_for_send`, as the transaction's first statement: with its BEGIN."""
        from psycopg import pq

        cursors = self._cursors()
        raw = cursors.raw
        email = lead.email
        begins = raw.pgconn.transaction_status == pq.TransactionStatus.IDLE
        settings = statements.transaction_settings() if begins else ()
        with statements.preparing(raw), connection.wrap_database_errors:
            with raw.pipeline() as pipeline:
                if statements.begin_in(raw, pipeline, settings):
                    if connection.queries_logged:
                        connection.queries_log.append({"sql": "BEGIN", "time": "0.000"})
                else:
                    for command in settings:  # psycopg sends its BEGIN first
                        raw.execute(command)
                self._execute(cursors.lead, statements.lock_lead_sql(), [lead.pk])
                sql, params = statements.lock_enrolment_sql(item, site_id=site_id, address_hash=address_hash)
                self._execute(cursors.enrolment, sql, params)
            lead_found = statements.refresh_lead(lead, cursors.lead.fetchone())
            found = statements.enrolment_found(cursors.enrolment.fetchall())
        if not lead_found or found is None:
            return None
        if lead.email != email:
            return found[0], statements.is_suppressed(site_id, lead.email)
        return found

    def record_send(self, item, advance, **fields):
        """`statements.record_send` (PostgreSQL); `fields` as it takes them."""
        cursors = self._cursors()
        with statements.preparing(cursors.raw), connection.wrap_database_errors:
            params = statements.record_params(item, advance, **fields)
            self._execute(cursors.lead, statements.record_cte(), params)
            sent_mail_id, delivery_id = cursors.lead.fetchone()
            if delivery_id is None:
                self._execute(cursors.lead, statements.sent_mail_delete(), [sent_mail_id])
        return delivery_id
