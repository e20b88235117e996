"""Claiming due rows with a lease, for workers that may run side by side (hand-overs, webhooks).

`claim_due(queryset, now, batch_size, lease)` takes up to `batch_size` rows of `queryset` (due
rows, in the order the caller wants them handled) whose lease is free, locks them with
`SELECT … FOR UPDATE SKIP LOCKED` where the database has it (PostgreSQL), and leases them until
`now + lease` by setting `claimed_until`. A worker that dies leaves its rows to the next run
once the lease ends. The UPDATE re-checks the lease, because SQLite has no row locks.
"""

from django.db import connection, transaction
from django.db.models import Q


def free(now):
    """Rows nobody holds a lease on at `now`."""
    return Q(claimed_until__isnull=True) | Q(claimed_until__lte=now)


def claim_due(queryset, now, batch_size, lease):
    """Ids of the rows claimed (at most `batch_size`)."""
    with transaction.atomic():
        due = queryset.filter(free(now))
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True, of=("self",))
        ids = list(due.values_list("pk", flat=True)[:batch_size])
        if ids:
            queryset.model.objects.filter(pk__in=ids).filter(free(now)).update(claimed_until=now + lease)
    return ids
