"""The care models' own guarantees: signed notes, their diagnoses and signed
addenda don't change (the model refuses on every database; PostgreSQL's
triggers refuse raw updates too), one active care-team row per pair, a
break-glass needs a reason, a referral a receiver."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.care.models import (
    BreakGlassAccess,
    CareTeamMembership,
    ConsultNote,
    Diagnosis,
    NoteAddendum,
    NoteStatus,
    Referral,
    SignedRecordError,
    content_hash_of,
)
from apps.clinics.models import Clinic
from tests.care.helpers import appointment_between
from tests.services import require_postgres


def _signed_note(*, alice: User, bob: User, clinic: Clinic) -> ConsultNote:
    appointment = appointment_between(patient=alice, doctor=bob, clinic=clinic)
    note = ConsultNote.objects.create(appointment=appointment, patient=alice, author=bob, plan="Rest")
    Diagnosis.objects.create(note=note, patient=alice, code="I10", description="Hypertension", is_primary=True)
    note.status = NoteStatus.SIGNED
    note.signed_at = timezone.now()
    note.signed_by = bob
    note.content_hash = content_hash_of(note.signed_content())
    note.save()
    return ConsultNote.objects.get(pk=note.pk)


@pytest.mark.sqlite
def test_it_refuses_to_change_or_delete_a_signed_note(alice: User, bob: User, clinic: Clinic) -> None:
    note = _signed_note(alice=alice, bob=bob, clinic=clinic)
    note.plan = "Something else"
    with pytest.raises(SignedRecordError):
        note.save()
    with pytest.raises(SignedRecordError):
        note.delete()
    assert ConsultNote.objects.get(pk=note.pk).plan == "Rest"


@pytest.mark.sqlite
def test_it_lets_a_signed_note_get_its_follow_up(alice: User, bob: User, clinic: Clinic) -> None:
    note = _signed_note(alice=alice, bob=bob, clinic=clinic)
    follow_up = appointment_between(patient=alice, doctor=bob, clinic=clinic, days=14)
    note.follow_up_appointment = follow_up
    note.save(update_fields=["follow_up_appointment", "updated_at"])
    assert ConsultNote.objects.get(pk=note.pk).follow_up_appointment == follow_up


@pytest.mark.sqlite
def test_it_checks_a_deferred_status_before_saving(alice: User, bob: User, clinic: Clinic) -> None:
    note = _signed_note(alice=alice, bob=bob, clinic=clinic)
    deferred = ConsultNote.objects.only("id", "plan").get(pk=note.pk)
    deferred.plan = "Changed"
    with pytest.raises(SignedRecordError):
        deferred.save(update_fields=["plan"])


@pytest.mark.sqlite
def test_it_only_lets_a_signed_notes_diagnosis_be_resolved(alice: User, bob: User, clinic: Clinic) -> None:
    note = _signed_note(alice=alice, bob=bob, clinic=clinic)
    diagnosis = note.diagnoses.get()
    diagnosis.code = "E11"
    with pytest.raises(SignedRecordError):
        diagnosis.save()
    with pytest.raises(SignedRecordError):
        Diagnosis.objects.create(note=note, patient=alice, code="E11", description="Diabetes")
    with pytest.raises(SignedRecordError):
        diagnosis.delete()
    diagnosis.refresh_from_db()
    diagnosis.status = "resolved"
    diagnosis.resolved_at = timezone.now()
    diagnosis.resolved_by = bob
    diagnosis.save(update_fields=["status", "resolved_at", "resolved_by"])
    assert Diagnosis.objects.get(pk=diagnosis.pk).status == "resolved"


@pytest.mark.sqlite
def test_it_refuses_to_change_a_signed_addendum(alice: User, bob: User, clinic: Clinic) -> None:
    note = _signed_note(alice=alice, bob=bob, clinic=clinic)
    addendum = NoteAddendum.objects.create(note=note, author=bob, text="BP was 150/95", signed_at=timezone.now())
    addendum = NoteAddendum.objects.get(pk=addendum.pk)
    addendum.text = "BP was 120/80"
    with pytest.raises(SignedRecordError):
        addendum.save()


@pytest.mark.postgres
def test_it_refuses_raw_updates_of_signed_content_on_postgresql(alice: User, bob: User, clinic: Clinic) -> None:
    require_postgres()
    note = _signed_note(alice=alice, bob=bob, clinic=clinic)
    addendum = NoteAddendum.objects.create(note=note, author=bob, text="Later", signed_at=timezone.now())
    refused = [
        lambda: ConsultNote.objects.filter(pk=note.pk).update(plan="Rewritten"),
        lambda: connection.cursor().execute("DELETE FROM care_consultnote WHERE id = %s", [note.pk]),
        lambda: Diagnosis.objects.filter(note=note).update(code="E11"),
        lambda: Diagnosis.objects.bulk_create([Diagnosis(note=note, patient=alice, code="E11", description="x")]),
        lambda: NoteAddendum.objects.filter(pk=addendum.pk).update(text="Rewritten"),
    ]
    for statement in refused:
        with pytest.raises(Exception, match="immutable"), transaction.atomic():
            statement()
    follow_up = appointment_between(patient=alice, doctor=bob, clinic=clinic, days=7)
    assert ConsultNote.objects.filter(pk=note.pk).update(follow_up_appointment=follow_up) == 1
    assert Diagnosis.objects.filter(note=note).update(status="resolved") == 1


@pytest.mark.sqlite
def test_it_allows_one_active_care_team_row_per_pair(alice: User, bob: User, clinic: Clinic) -> None:
    CareTeamMembership.objects.create(patient=alice, doctor=bob, clinic=clinic, added_by=bob, ended_at=timezone.now())
    CareTeamMembership.objects.create(patient=alice, doctor=bob, clinic=clinic, added_by=bob)
    with pytest.raises(IntegrityError), transaction.atomic():
        CareTeamMembership.objects.create(patient=alice, doctor=bob, clinic=clinic, added_by=bob)


@pytest.mark.sqlite
def test_it_requires_a_break_glass_reason_and_a_receiver_in_the_database(alice: User, bob: User) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        BreakGlassAccess.objects.create(
            doctor=bob, patient=alice, reason="short", expires_at=timezone.now() + timedelta(hours=12)
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Referral.objects.create(patient=alice, from_doctor=bob, reason="Chest pain")
