"""Two recomputations of the same leads at once write the history once, on PostgreSQL.

Each recomputation locks the leads' score rows before it reads their history, so the second one
waits for the first to commit and then finds nothing left to change. Without the lock both
would read the same (empty) history and write every contribution twice.
"""

import threading
import time

import pytest
from django.db import connection
from django.db.models import Count

from inbound.leads import Lead, LeadEvent
from inbound.scoring.engine import recompute
from inbound.scoring.models import LeadScore, ScoreChange, ScoringRule

from .conftest import make_leads, rule

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="needs PostgreSQL: SQLite has no row locks (SELECT ... FOR UPDATE), "
                              "it locks the whole database, so this race cannot be reproduced there"),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

HOLD_SECONDS = 1.0
TIMEOUT = 20


def start(target, errors):
    def run():
        try:
            target()
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_concurrent_recomputations_write_each_contribution_once(site):
    rule(site, ScoringRule.DOWNLOAD, 5)
    rule(site, ScoringRule.CONFIRMED, 3)
    leads = make_leads(site, 30, prefix="race")
    queryset = Lead.objects.filter(email__startswith="race")
    recompute(queryset)  # the score rows exist: only their lock can keep the two apart
    kinds = (LeadEvent.DOWNLOAD, LeadEvent.OPTIN_CONFIRMED)
    LeadEvent.objects.bulk_create([LeadEvent(site=site, lead=lead, kind=kind)
                                   for lead in leads for kind in kinds])
    inside, results, times, errors = threading.Event(), {}, {}, []

    def first():
        def hold(done, total):  # called inside the transaction, after the rows are locked
            inside.set()
            time.sleep(HOLD_SECONDS)
            times["first_commit"] = time.monotonic()

        results["first"] = recompute(queryset, progress=hold)

    def second():
        assert inside.wait(TIMEOUT)
        results["second"] = recompute(queryset)
        times["second_done"] = time.monotonic()

    threads = [start(first, errors), start(second, errors)]
    for thread in threads:
        thread.join(TIMEOUT)
    assert not errors, errors
    assert times["second_done"] > times["first_commit"], "the second waited for the first"
    assert results["first"].changes == 60 and results["second"].changes == 0
    duplicates = (ScoreChange.objects.values("lead_id", "rule_id", "event_id").annotate(n=Count("pk"))
                  .filter(n__gt=1))
    assert not duplicates.exists()
    assert sorted(set(LeadScore.objects.filter(lead__in=queryset).values_list("total", flat=True))) == [8]
