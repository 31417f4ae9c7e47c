from __future__ import annotations

import itertools

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from apps.accounts.models import User
from apps.audit.models import GENESIS_HASH, AuditEvent
from apps.audit.services import audit_record


def _three_events(user: User) -> list[AuditEvent]:
    return [audit_record(action="view", actor=user, object_type="patient_profile", object_id=i) for i in range(3)]


def _raw(sql: str, params: list[object]) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The append-only trigger refuses this; an attacker with superuser
            # rights could switch it off like this, and audit_verify still
            # catches the change.
            cursor.execute("SET session_replication_role = replica")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")


@pytest.mark.sqlite
def test_it_chains_each_event_to_the_previous_one(alice: User) -> None:
    AuditEvent.objects.all()  # events of the fixture's consent come first
    events = list(AuditEvent.objects.order_by("id"))
    assert events[0].prev_hash == GENESIS_HASH
    for earlier, later in itertools.pairwise(events):
        assert later.prev_hash == earlier.hash


@pytest.mark.sqlite
def test_it_verifies_an_intact_log(alice: User, capsys: pytest.CaptureFixture[str]) -> None:
    _three_events(alice)
    call_command("audit_verify")
    assert "intact" in capsys.readouterr().out


@pytest.mark.sqlite
def test_it_detects_a_changed_event(alice: User) -> None:
    events = _three_events(alice)
    _raw("UPDATE audit_auditevent SET object_id = %s WHERE id = %s", ["999", events[1].pk])
    with pytest.raises(CommandError, match="NOT intact"):
        call_command("audit_verify")


@pytest.mark.sqlite
def test_it_detects_a_deleted_event(alice: User) -> None:
    events = _three_events(alice)
    _raw("DELETE FROM audit_auditevent WHERE id = %s", [events[1].pk])
    with pytest.raises(CommandError, match="NOT intact"):
        call_command("audit_verify")


@pytest.mark.sqlite
def test_it_refuses_updates_and_deletes_through_the_orm(alice: User) -> None:
    event = _three_events(alice)[0]
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        event.delete()
    with pytest.raises(TypeError):
        AuditEvent.objects.filter(pk=event.pk).update(reason="x")
    with pytest.raises(TypeError):
        AuditEvent.objects.all().delete()


def test_the_database_refuses_raw_updates_on_postgresql(alice: User) -> None:
    from django.db import DatabaseError, transaction

    from tests.services import require_postgres

    require_postgres()
    event = _three_events(alice)[0]
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET reason = 'x' WHERE id = %s", [event.pk])


def test_it_keeps_health_data_out_of_events(alice: User) -> None:
    event = audit_record(action="view", actor=alice, object_type="patient_profile", object_id=1, patient=alice)
    content = event.canonical_content().decode()
    assert alice.full_name not in content
    assert str(alice.email) not in content
    assert str(alice.phone) not in content
