"""Many writers at once: the audit chain stays one line, each event linked
to the one committed before it. Real threads, each with its own database
connection and transaction, released together."""

from __future__ import annotations

import threading

import pytest
from django.db import connections, transaction

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.audit.selectors import audit_chain_verify
from apps.audit.services import audit_record

pytestmark = [pytest.mark.sqlite, pytest.mark.django_db(transaction=True)]

WRITERS = 20
EVENTS_EACH = 5


def test_it_keeps_one_chain_when_many_write_at_once(alice: User) -> None:
    start = threading.Barrier(WRITERS)
    errors: list[str] = []

    def write(index: int) -> None:
        try:
            start.wait()
            for number in range(EVENTS_EACH):
                with transaction.atomic():
                    audit_record(action="view", actor=alice, object_type="writer", object_id=f"{index}:{number}")
        except Exception as exc:  # the test must show it
            errors.append(f"{exc.__class__.__name__}: {exc}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(index,)) for index in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a writer is stuck"
    assert errors == []
    assert AuditEvent.objects.filter(object_type="writer").count() == WRITERS * EVENTS_EACH
    prev_hashes = list(AuditEvent.objects.values_list("prev_hash", flat=True))
    assert len(prev_hashes) == len(set(prev_hashes)), "two events link to the same one: the chain forked"
    assert list(audit_chain_verify()) == []
