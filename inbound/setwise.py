"""Set-wise writes: many rows computed in Python, written with a fixed number of statements.

`staged(columns, rows)` loads any number of rows into a temporary table with ONE statement (the
rows travel as a single JSON parameter, unpacked by the database: `json_each` on SQLite,
`json_array_elements` on PostgreSQL), so the caller can then `UPDATE … WHERE … IN (SELECT …)`
and `INSERT … SELECT` from it. Neither the number of statements nor the number of parameters
grows with the number of rows, unlike `bulk_create`/`bulk_update` (which split into batches, on
SQLite by its parameter limit) or `executemany` (one round trip per row).

Used by bulk recomputations (personas, scores) that must not issue a query per lead.
"""

import json
import secrets
from contextlib import contextmanager, suppress

from django.db import DatabaseError, connection

# Timestamps are deliberately not offered: pass them as parameters of the statements that use
# the staged rows, so each backend stores them in its own format.
TYPES = {"bigint", "integer", "text", "boolean"}


def _select_from_json(columns):
    """SQL selecting the columns from the JSON array parameter (one array per row)."""
    if connection.vendor == "postgresql":
        parts = [f"(r->>{index})::{kind}"
                 for index, (_name, kind) in enumerate(columns.items())]
        return f"SELECT {', '.join(parts)} FROM json_array_elements(%s::json) AS r"
    parts = [f"json_extract(value, '$[{index}]')" for index in range(len(columns))]
    return f"SELECT {', '.join(parts)} FROM json_each(%s)"


@contextmanager
def staged(columns, rows):
    """A temporary table holding `rows` (tuples in the order of `columns`, a dict of
    name → one of `TYPES`); yields its quoted name and drops it afterwards.

    Must run inside a transaction on PostgreSQL if the caller wants the writes from it to be
    atomic (the table itself lives for the connection until dropped).
    """
    unknown = set(columns.values()) - TYPES
    if unknown:
        raise ValueError(f"unsupported column types: {unknown}")
    qn = connection.ops.quote_name
    table = qn(f"stage_{secrets.token_hex(6)}")
    definition = ", ".join(f"{qn(name)} {kind}" for name, kind in columns.items())
    payload = json.dumps([list(row) for row in rows], default=str, separators=(",", ":"))
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {table} ({definition})")
        try:
            cursor.execute(f"INSERT INTO {table} ({', '.join(qn(n) for n in columns)}) "
                           f"{_select_from_json(columns)}", [payload])
            yield table
        except BaseException:
            # In a failed PostgreSQL transaction the rollback removes the table anyway.
            with suppress(DatabaseError):
                cursor.execute(f"DROP TABLE {table}")
            raise
        cursor.execute(f"DROP TABLE {table}")
