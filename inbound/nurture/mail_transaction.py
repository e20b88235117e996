"""One nurture mail's transaction, for the dispatcher's `_send`:

    with mail_transaction(batch.transactions) as mail:
        found = mail.lock_for_send(item, lead, site_id=…, address_hash=…)
        …
        delivery_id = mail.record_send(item, advance, …)
        …send…
    # committed here; an exception rolled it all back

Django's `transaction.atomic()` around `statements.lock_for_send` and `record_send`, whose
psycopg cursors (PostgreSQL) are kept for the whole batch in `cache`, a dict the batch owns,
instead of new ones per statement: with Django's cursor wrappers, those cost about as much CPU
as psycopg spends on the statements themselves (docs/benchmarks.md, "the floor").
"""

from django.db import connection, transaction

from . import statements


def mail_transaction(cache):
    return _MailTransaction(cache)


class _MailTransaction:
    def __init__(self, cache):
        self.cache = cache
        self._current = None

    def __enter__(self):
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        return self

    def __exit__(self, *exc_info):
        return self._atomic.__exit__(*exc_info)

    def _cursors(self):
        if connection.vendor != "postgresql":
            return None
        if self._current is None:  # once per mail: the connection does not change within it
            self._current = statements.Cursors.current(self.cache)
        return self._current

    def lock_for_send(self, item, lead, **where):
        return statements.lock_for_send(item, lead, cursors=self._cursors(), **where)

    def record_send(self, item, advance, **fields):
        return statements.record_send(item, advance, cursors=self._cursors(), **fields)
