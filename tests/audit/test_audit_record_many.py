"""audit_record_many: many events in one go, chained as one at a time."""

from __future__ import annotations

import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.audit.selectors import audit_chain_verify
from apps.audit.services import AuditEntry, audit_record, audit_record_many

pytestmark = pytest.mark.sqlite


def _entries(patient: User, count: int) -> list[AuditEntry]:
    return [AuditEntry("create", "reading", n, patient=patient) for n in range(count)]


def test_it_chains_the_events_after_the_last_one(alice: User, bob: User) -> None:
    before = audit_record(action="view", actor=bob, object_type="readings", patient=alice)
    events = audit_record_many(actor=bob, entries=_entries(alice, 5))
    after = audit_record(action="view", actor=bob, object_type="readings", patient=alice)
    stored = list(AuditEvent.objects.filter(id__gte=before.pk).order_by("id"))
    assert [event.pk for event in stored] == [before.pk, *[event.pk for event in events], after.pk]
    for earlier, later in itertools.pairwise(stored):
        assert later.prev_hash == earlier.hash
    assert [event.object_id for event in events] == ["0", "1", "2", "3", "4"]
    assert {(e.actor_id, e.actor_label, e.role, e.patient_id) for e in events} == {
        (bob.pk, f"user:{bob.pk}", "doctor", alice.pk)
    }
    assert list(audit_chain_verify()) == []


def test_it_writes_in_as_many_queries_whatever_the_number(alice: User) -> None:
    counts = []
    for count in (3, 300):
        with CaptureQueriesContext(connection) as queries:
            audit_record_many(actor=alice, entries=_entries(alice, count))
        counts.append(len(queries))
    if connection.vendor == "postgresql":
        assert counts[0] == counts[1]
    else:  # SQLite: 62 events per insert (999 parameters)
        assert counts[1] - counts[0] <= 5
    assert AuditEvent.objects.filter(object_type="reading").count() == 303
    assert list(audit_chain_verify()) == []


def test_nothing_to_record_writes_nothing(alice: User) -> None:
    with CaptureQueriesContext(connection) as queries:
        assert audit_record_many(actor=alice, entries=[]) == []
    assert len(queries) == 0


def test_it_inserts_every_event_in_one_statement(alice: User, bob: User) -> None:
    audit_record(action="view", actor=bob, object_type="readings", patient=alice)
    with CaptureQueriesContext(connection) as queries:
        events = audit_record_many(actor=bob, entries=_entries(alice, 300))
    inserts = [query for query in queries if query["sql"].startswith("INSERT")]
    if connection.vendor == "postgresql":
        assert len(inserts) == 1
    assert len({event.pk for event in events}) == 300
    assert {(e.created_at, e.role, e.request_id) for e in events} == {
        (events[0].created_at, "doctor", events[0].request_id)
    }
    assert list(audit_chain_verify()) == []
