"""Consult notes: start (objective pre-filled), autosave with optimistic
concurrency, diagnoses, signing (immutable afterwards), addenda, the
problem list, the plan-ready notice, bad input."""

# ruff: noqa: F811  (the shared fixtures are imported, then named as arguments)

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.care.models import ConsultNote, Diagnosis, NoteAddendum, NoteStatus, SignedRecordError
from apps.care.selectors_notes import (
    note_plan_for_patient,
    notes_for_patient,
    problem_list_for_user,
)
from apps.care.services_notes import (
    NoteRefused,
    consult_note_save_draft,
    consult_note_sign,
    consult_note_start,
    consult_note_verify,
    diagnosis_add,
    diagnosis_remove,
    diagnosis_resolve,
    note_addendum_add,
)
from apps.clinics.models import Clinic
from apps.notifications.models import Notification
from apps.notifications.rendering import notification_render
from apps.scheduling.models import Appointment, AppointmentStatus
from apps.vitals.services import reading_record
from tests.care.helpers import appointment_between
from tests.care.notes_support import COMPLETE, appointment, dora, eve, fill, note, signed, signed_note  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]


def test_it_starts_the_note_with_the_latest_readings(alice: User, bob: User, appointment: Appointment) -> None:
    now = timezone.now()
    reading_record(
        patient=alice,
        by=alice,
        kind="blood_pressure",
        values={"systolic": 150, "diastolic": 95},
        measured_at=now - timedelta(days=2),
        source="manual",
    )
    reading_record(
        patient=alice,
        by=alice,
        kind="blood_pressure",
        values={"systolic": 162, "diastolic": 99},
        measured_at=now - timedelta(hours=1),
        source="manual",
    )
    reading_record(patient=alice, by=alice, kind="weight", values={"weight": 70}, measured_at=now, source="manual")

    started = consult_note_start(appointment=appointment, by=bob)

    assert started.status == NoteStatus.DRAFT
    assert started.author == bob and started.patient == alice
    assert "162/99 mmHg" in started.objective
    assert "150/95" not in started.objective
    assert "70" in started.objective
    assert AuditEvent.objects.filter(object_type="readings", actor=bob, patient=alice).exists()
    assert AuditEvent.objects.filter(object_type="consult_note", action="create", object_id=str(started.pk)).exists()


def test_it_returns_the_existing_note_when_started_again(
    appointment: Appointment, bob: User, note: ConsultNote
) -> None:
    assert consult_note_start(appointment=appointment, by=bob).pk == note.pk
    assert ConsultNote.objects.count() == 1


def test_only_the_appointments_doctor_starts_its_note(appointment: Appointment, dora: User, alice: User) -> None:
    for someone in (dora, alice):
        with pytest.raises(NoteRefused):
            consult_note_start(appointment=appointment, by=someone)
    assert not ConsultNote.objects.exists()


def test_it_refuses_a_note_for_a_cancelled_appointment(appointment: Appointment, bob: User) -> None:
    Appointment.objects.filter(pk=appointment.pk).update(status=AppointmentStatus.CANCELLED)
    appointment.refresh_from_db()
    with pytest.raises(NoteRefused) as refused:
        consult_note_start(appointment=appointment, by=bob)
    assert refused.value.code == "cancelled"


def test_it_saves_the_draft_and_bumps_the_version(note: ConsultNote, bob: User) -> None:
    saved = consult_note_save_draft(note=note, by=bob, fields={"subjective": "Cough"}, version=1)
    assert saved.version == 2
    note.refresh_from_db()
    assert note.subjective == "Cough" and note.version == 2


def test_it_refuses_a_stale_autosave_and_writes_nothing(note: ConsultNote, bob: User) -> None:
    consult_note_save_draft(note=note, by=bob, fields={"subjective": "From the laptop"}, version=1)
    with pytest.raises(NoteRefused) as refused:
        consult_note_save_draft(note=note, by=bob, fields={"subjective": "From the phone"}, version=1)
    assert refused.value.code == "stale"
    assert "changed elsewhere" in refused.value.message
    note.refresh_from_db()
    assert note.subjective == "From the laptop" and note.version == 2


def test_it_refuses_bad_input_with_a_message_and_writes_nothing(note: ConsultNote, bob: User) -> None:
    for fields, code in (
        ({"plan": "x" * 10_001}, "too_long"),
        ({"author": "Mallory"}, "unknown_field"),
        ({"plan": ["a list"]}, "not_text"),
        ({"follow_up_after_days": 0}, "bad_days"),
        ({"follow_up_after_days": "soon"}, "bad_days"),
        ({"subjective": "fine", "follow_up_after_days": 9999}, "bad_days"),
    ):
        with pytest.raises(NoteRefused) as refused:
            consult_note_save_draft(note=note, by=bob, fields=fields, version=1)
        assert refused.value.code == code
        assert refused.value.message
    note.refresh_from_db()
    assert note.version == 1 and note.subjective == "" and note.plan == ""


def test_only_the_author_saves_the_draft(note: ConsultNote, dora: User, alice: User) -> None:
    for someone in (dora, alice):
        with pytest.raises(NoteRefused):
            consult_note_save_draft(note=note, by=someone, fields={"plan": "x"}, version=1)


def test_it_adds_diagnoses_from_the_icd10_list(note: ConsultNote, bob: User) -> None:
    first = diagnosis_add(note=note, by=bob, code="i10")
    second = diagnosis_add(note=note, by=bob, code="E11.9")
    assert (first.code, first.is_primary) == ("I10", True)
    assert first.description == "Essential (primary) hypertension"
    assert second.is_primary is False
    third = diagnosis_add(note=note, by=bob, code="E78.5", is_primary=True)
    assert third.is_primary
    assert list(Diagnosis.objects.filter(is_primary=True)) == [third]


def test_it_refuses_unknown_codes_and_duplicates(note: ConsultNote, bob: User) -> None:
    for code in ("XYZ", "E11", "", "I10" + "0" * 40):
        with pytest.raises(NoteRefused) as refused:
            diagnosis_add(note=note, by=bob, code=code)
        assert refused.value.code == "unknown_code"
    diagnosis_add(note=note, by=bob, code="I10")
    with pytest.raises(NoteRefused) as refused:
        diagnosis_add(note=note, by=bob, code="I10")
    assert refused.value.code == "duplicate_code"
    assert Diagnosis.objects.count() == 1


def test_removing_the_primary_diagnosis_promotes_the_next(note: ConsultNote, bob: User) -> None:
    first = diagnosis_add(note=note, by=bob, code="I10")
    second = diagnosis_add(note=note, by=bob, code="E11.9")
    diagnosis_remove(note=note, by=bob, diagnosis_id=first.pk)
    second.refresh_from_db()
    assert second.is_primary


def test_signing_needs_assessment_plan_summary_and_a_diagnosis(note: ConsultNote, bob: User) -> None:
    with pytest.raises(NoteRefused) as refused:
        consult_note_sign(note=note, by=bob)
    assert refused.value.code == "assessment_required"
    note = fill(note, bob, plan="  ")
    with pytest.raises(NoteRefused) as refused:
        consult_note_sign(note=note, by=bob)
    assert refused.value.code == "plan_required"
    note = fill(note, bob)
    with pytest.raises(NoteRefused) as refused:
        consult_note_sign(note=note, by=bob)
    assert refused.value.code == "diagnosis_required"
    note.refresh_from_db()
    assert note.status == NoteStatus.DRAFT
    signed_now = consult_note_sign(note=note, by=bob, no_diagnosis=True)
    assert signed_now.status == NoteStatus.SIGNED


def test_signing_sets_the_signer_and_a_verifiable_hash(signed_note: ConsultNote, bob: User) -> None:
    signed_note.refresh_from_db()
    assert signed_note.signed_by == bob
    assert signed_note.signed_at is not None
    assert len(signed_note.content_hash) == 64
    assert consult_note_verify(note=signed_note)


def test_signing_refuses_a_version_the_doctor_has_not_seen(note: ConsultNote, bob: User) -> None:
    note = fill(note, bob)
    diagnosis_add(note=note, by=bob, code="I10")
    with pytest.raises(NoteRefused) as refused:
        consult_note_sign(note=note, by=bob, version=note.version - 1)
    assert refused.value.code == "stale"


def test_a_signed_note_refuses_every_change(signed_note: ConsultNote, bob: User) -> None:
    version = ConsultNote.objects.get(pk=signed_note.pk).version
    with pytest.raises(NoteRefused) as refused:
        consult_note_save_draft(note=signed_note, by=bob, fields={"plan": "changed"}, version=version)
    assert refused.value.code == "signed"
    with pytest.raises(NoteRefused):
        diagnosis_add(note=signed_note, by=bob, code="E11.9")
    with pytest.raises(NoteRefused):
        diagnosis_remove(note=signed_note, by=bob, diagnosis_id=signed_note.diagnoses.get().pk)
    with pytest.raises(NoteRefused):
        consult_note_sign(note=signed_note, by=bob)
    # The model refuses too, whoever calls it.
    row = ConsultNote.objects.get(pk=signed_note.pk)
    row.plan = "changed"
    with pytest.raises(SignedRecordError):
        row.save()
    with pytest.raises(SignedRecordError):
        row.delete()
    fresh = ConsultNote.objects.get(pk=signed_note.pk)
    assert fresh.plan == COMPLETE["plan"]
    assert consult_note_verify(note=fresh)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
def test_postgresql_refuses_changing_a_signed_note_behind_the_models_back(signed_note: ConsultNote) -> None:
    with pytest.raises(DatabaseError), transaction.atomic():
        ConsultNote.objects.filter(pk=signed_note.pk).update(plan="rewritten")
    with pytest.raises(DatabaseError), transaction.atomic():
        Diagnosis.objects.filter(note=signed_note).update(code="E11.9")
    assert ConsultNote.objects.get(pk=signed_note.pk).plan == COMPLETE["plan"]


def test_addenda_are_signed_and_dated_and_immutable(signed_note: ConsultNote, bob: User) -> None:
    addendum = note_addendum_add(note=signed_note, by=bob, text="  Potassium came back normal.  ")
    assert addendum.text == "Potassium came back normal."
    assert addendum.signed_at is not None and len(addendum.content_hash) == 64
    addendum = NoteAddendum.objects.get(pk=addendum.pk)
    addendum.text = "rewritten"
    with pytest.raises(SignedRecordError):
        addendum.save()
    assert AuditEvent.objects.filter(object_type="note_addendum", action="create").count() == 1


def test_addenda_need_a_signed_note_text_and_the_author(
    note: ConsultNote, bob: User, dora: User, signed_note: ConsultNote
) -> None:
    for text, code in (("", "empty_addendum"), ("   ", "empty_addendum"), ("x" * 5001, "too_long")):
        with pytest.raises(NoteRefused) as refused:
            note_addendum_add(note=signed_note, by=bob, text=text)
        assert refused.value.code == code
    with pytest.raises(NoteRefused):
        note_addendum_add(note=signed_note, by=dora, text="Not mine")
    assert not NoteAddendum.objects.exists()


def test_an_addendum_to_a_draft_is_refused(note: ConsultNote, bob: User) -> None:
    with pytest.raises(NoteRefused) as refused:
        note_addendum_add(note=note, by=bob, text="Later")
    assert refused.value.code == "not_signed"


def test_the_patient_is_told_the_plan_is_ready(
    note: ConsultNote, bob: User, alice: User, deliver: Callable[[], Any]
) -> None:
    with deliver():
        signed(note, bob)
    rows = Notification.objects.filter(recipient=alice, template="care/plan_ready")
    assert {row.channel for row in rows} == {"sms", "in_app"}
    # Not urgent: the SMS may wait for the end of Alice's quiet hours.
    sms = notification_render(rows.get(channel="sms"))
    assert "plan" in sms.text and f"/a/{note.appointment_id}/" in sms.text
    assert "amlodipine" not in sms.text.lower()  # no health detail by SMS
    assert rows.get(channel="in_app").status == "sent"


def test_the_plan_ready_sms_is_in_the_patients_language(
    note: ConsultNote, bob: User, alice: User, deliver: Callable[[], Any]
) -> None:
    User.objects.filter(pk=alice.pk).update(language="zh-hans")
    note = ConsultNote.objects.select_related("patient").get(pk=note.pk)
    with deliver():
        signed(note, bob)
    row = Notification.objects.get(recipient=alice, template="care/plan_ready", channel="sms")
    assert row.language == "zh-hans"


def test_the_patient_reads_only_the_plan_of_a_signed_note(
    note: ConsultNote, bob: User, alice: User, appointment: Appointment, mallory: User
) -> None:
    assert note_plan_for_patient(user=alice, appointment=appointment) is None  # a draft
    signed(note, bob)
    plan = note_plan_for_patient(user=alice, appointment=appointment)
    assert plan is not None
    assert plan.summary == COMPLETE["patient_summary"]
    assert plan.medications == COMPLETE["medications"] and plan.advice == COMPLETE["advice"]
    assert not hasattr(plan, "assessment")
    assert note_plan_for_patient(user=mallory, appointment=appointment) is None
    assert note_plan_for_patient(user=bob, appointment=appointment) is None


def test_the_problem_list_has_active_diagnoses_of_signed_notes(
    alice: User,
    bob: User,
    clinic: Clinic,
    note: ConsultNote,
) -> None:
    signed(note, bob, code="I10")
    later = appointment_between(patient=alice, doctor=bob, clinic=clinic, days=-0.005)
    draft = consult_note_start(appointment=later, by=bob)
    diagnosis_add(note=draft, by=bob, code="E11.9")  # a draft's: not a problem yet

    problems = problem_list_for_user(user=bob, patient=alice, language="zh-hans")
    assert [(p.diagnosis.code, p.label) for p in problems] == [("I10", "原发性高血压")]

    diagnosis_resolve(diagnosis=problems[0].diagnosis, by=bob)
    assert problem_list_for_user(user=bob, patient=alice) == []
    assert [p.diagnosis.code for p in problem_list_for_user(user=bob, patient=alice, include_resolved=True)] == ["I10"]
    with pytest.raises(NoteRefused) as refused:
        diagnosis_resolve(diagnosis=problems[0].diagnosis, by=bob)
    assert refused.value.code == "already_resolved"


def test_doctors_without_a_relation_read_no_notes_or_problems(
    alice: User, bob: User, dora: User, eve: User, signed_note: ConsultNote
) -> None:
    from django.http import Http404

    for someone in (dora, eve):
        with pytest.raises(Http404):
            notes_for_patient(user=someone, patient=alice)
        with pytest.raises(Http404):
            problem_list_for_user(user=someone, patient=alice)
        with pytest.raises(NoteRefused):
            diagnosis_resolve(diagnosis=signed_note.diagnoses.get(), by=someone)
    assert [n.pk for n in notes_for_patient(user=bob, patient=alice)] == [signed_note.pk]


def test_other_doctors_see_signed_notes_but_not_drafts(
    alice: User,
    bob: User,
    dora: User,
    clinic: Clinic,
    note: ConsultNote,
) -> None:
    appointment_between(patient=alice, doctor=dora, clinic=clinic, days=1)  # Dora now shares an appointment
    assert notes_for_patient(user=dora, patient=alice) == []
    signed(note, bob)
    assert [n.pk for n in notes_for_patient(user=dora, patient=alice)] == [note.pk]
