"""Reads of consult notes, diagnoses and the problem list, with their access
rules (docs/notes.md):

- the appointment's doctor writes the note (and is the only one who sees
  it while it is a draft);
- a doctor who may see the patient's record (``patient_can_be_seen_by``:
  shared appointment, open referral, care team, break-glass) reads signed
  notes, their diagnoses and addenda, and the problem list;
- the patient reads only the plain-language part of a signed note (summary,
  advice, medications, follow-up): ``note_plan_for_patient``;
- clinic admins, other patients and anyone else read nothing: "not found".

Every read of a note is audited; a refusal is audited as a failed access.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet
from django.http import Http404

from apps.accounts.models import User
from apps.accounts.selectors import patient_can_be_seen_by
from apps.audit.models import AuditAction
from apps.audit.services import audit_access_denied, audit_record
from apps.care.icd10 import icd10_label
from apps.care.models import ConsultNote, Diagnosis, DiagnosisStatus, NoteAddendum, NoteStatus
from apps.clinics.selectors import UserRole, user_roles
from apps.scheduling.models import Appointment, AppointmentStatus


def _is_doctor(user: User) -> bool:
    return UserRole.DOCTOR in user_roles(user=user)


def _refuse(*, user: User, object_type: str, object_id: object) -> Http404:
    audit_access_denied(actor=user, object_type=object_type, object_id=object_id)
    return Http404()


def note_writable_by(*, user: User, note: ConsultNote) -> bool:
    """The note's author, who is the appointment's doctor, writes it."""
    if not user.is_authenticated:
        return False
    if not _is_doctor(user):
        return False
    if note.author_id != user.pk:
        return False
    return note.appointment.doctor_id == user.pk


def note_readable_by(*, user: User, note: ConsultNote) -> bool:
    """Clinical content: the author always; other doctors who may see the
    patient's record once it is signed; nobody else (not the patient, who
    reads the plan through ``note_plan_for_patient``)."""
    if not user.is_authenticated:
        return False
    if not _is_doctor(user):
        return False
    if user.pk == note.patient_id:
        return False
    if note.author_id == user.pk:
        return True
    if note.status != NoteStatus.SIGNED:
        return False
    return patient_can_be_seen_by(user=user, patient=note.patient)


def appointment_get_for_note_author(*, user: User, appointment_id: int) -> Appointment:
    """The appointment whose note ``user`` may start or write: its doctor's,
    not cancelled."""
    appointment = (
        Appointment.objects.select_related("patient", "doctor", "clinic")
        .filter(pk=appointment_id, doctor=user)
        .exclude(status=AppointmentStatus.CANCELLED)
        .first()
    )
    if appointment is None or not _is_doctor(user):
        raise _refuse(user=user, object_type="appointment", object_id=appointment_id)
    return appointment


def _note_queryset() -> QuerySet[ConsultNote]:
    return ConsultNote.objects.select_related(
        "appointment", "appointment__clinic", "appointment__doctor", "patient", "author", "signed_by"
    )


def note_for_appointment(*, appointment: Appointment) -> ConsultNote | None:
    """The appointment's note if one was started (no access check: the
    caller holds an appointment it may see; read it through
    ``note_get_for_user``)."""
    return _note_queryset().filter(appointment=appointment).first()


def note_get_for_user(*, user: User, note_id: int) -> ConsultNote:
    """A note whose clinical content ``user`` may read; audited."""
    note = _note_queryset().filter(pk=note_id).first()
    if note is None or not note_readable_by(user=user, note=note):
        raise _refuse(user=user, object_type="consult_note", object_id=note_id)
    audit_record(
        action=AuditAction.VIEW,
        actor=user,
        object_type="consult_note",
        object_id=note.pk,
        patient=note.patient,
        clinic_id=note.appointment.clinic_id,
    )
    return note


def note_get_for_author(*, user: User, note_id: int) -> ConsultNote:
    """A note ``user`` may change (draft text, diagnoses, addenda, the
    follow-up); not audited here: the service that writes audits."""
    note = _note_queryset().filter(pk=note_id).first()
    if note is None or not note_writable_by(user=user, note=note):
        raise _refuse(user=user, object_type="consult_note", object_id=note_id)
    return note


@dataclass(frozen=True)
class DiagnosisRow:
    diagnosis: Diagnosis
    label: str  # in the reader's language where we have a name


def _label(diagnosis: Diagnosis, language: str | None) -> str:
    return icd10_label(code=diagnosis.code, description=diagnosis.description, language=language)


def note_diagnoses(*, note: ConsultNote, language: str | None = None) -> list[DiagnosisRow]:
    """The note's diagnoses, primary first (the caller already read the note
    through ``note_get_for_user``)."""
    return [DiagnosisRow(d, _label(d, language)) for d in note.diagnoses.all()]


def note_addenda(*, note: ConsultNote) -> QuerySet[NoteAddendum]:
    """The note's addenda, oldest first (the caller already read the note)."""
    return note.addenda.select_related("author").order_by("created_at", "id")


def notes_for_patient(*, user: User, patient: User, limit: int = 20) -> list[ConsultNote]:
    """The notes of ``patient`` a doctor may read, newest first: signed
    notes, and the doctor's own drafts. Audited once."""
    if not _is_doctor(user) or user.pk == patient.pk or not patient_can_be_seen_by(user=user, patient=patient):
        raise _refuse(user=user, object_type="consult_notes", object_id=patient.pk)
    notes = notes_readable(user=user, patient=patient, limit=limit)
    audit_record(
        action=AuditAction.VIEW, actor=user, object_type="consult_notes", object_id=patient.pk, patient=patient
    )
    return notes


def notes_readable(*, user: User, patient: User, limit: int) -> list[ConsultNote]:
    """``notes_for_patient`` without its access check and audit, for a
    caller that checked access to the record and audits "consult_notes"
    itself (the chart, with its other events)."""
    return list(
        _note_queryset()
        .filter(patient=patient)
        .filter(Q(status=NoteStatus.SIGNED) | Q(author=user, status=NoteStatus.DRAFT))
        .order_by("-created_at", "-id")[:limit]
    )


def problem_list_for_user(
    *, user: User, patient: User, language: str | None = None, include_resolved: bool = False
) -> list[DiagnosisRow]:
    """The patient's problem list: the diagnoses of their signed notes,
    active ones (and resolved ones when asked), newest first, one row per
    code (the latest). For doctors who may see the patient; audited."""
    if not _is_doctor(user) or user.pk == patient.pk or not patient_can_be_seen_by(user=user, patient=patient):
        raise _refuse(user=user, object_type="problem_list", object_id=patient.pk)
    problems = problem_list(patient=patient, language=language, include_resolved=include_resolved)
    audit_record(action=AuditAction.VIEW, actor=user, object_type="problem_list", object_id=patient.pk, patient=patient)
    return problems


def problem_list(*, patient: User, language: str | None, include_resolved: bool = False) -> list[DiagnosisRow]:
    """``problem_list_for_user`` without its access check and audit, for a
    caller that checked access to the record and audits "problem_list"
    itself (the chart, with its other events)."""
    rows = Diagnosis.objects.filter(patient=patient, note__status=NoteStatus.SIGNED).select_related("note")
    if not include_resolved:
        rows = rows.filter(status=DiagnosisStatus.ACTIVE)
    seen: set[str] = set()
    problems: list[DiagnosisRow] = []
    for diagnosis in rows.order_by("-note__signed_at", "-is_primary", "-id"):
        if diagnosis.code in seen:
            continue
        seen.add(diagnosis.code)
        problems.append(DiagnosisRow(diagnosis, _label(diagnosis, language)))
    return problems


def diagnosis_get_for_resolver(*, user: User, diagnosis_id: int) -> Diagnosis:
    """A diagnosis of a signed note that ``user`` may mark resolved: a
    doctor who may see the patient."""
    diagnosis = (
        Diagnosis.objects.select_related("note", "patient").filter(pk=diagnosis_id, note__status="signed").first()
    )
    if (
        diagnosis is None
        or not _is_doctor(user)
        or user.pk == diagnosis.patient_id
        or not patient_can_be_seen_by(user=user, patient=diagnosis.patient)
    ):
        raise _refuse(user=user, object_type="diagnosis", object_id=diagnosis_id)
    return diagnosis


@dataclass(frozen=True)
class PatientPlan:
    """What the patient reads of their signed note: no assessment, no
    diagnoses, no clinical notes."""

    note_id: int
    doctor_name: str
    signed_at: datetime
    summary: str
    advice: str
    medications: str
    follow_up_after_days: int | None
    follow_up_appointment_id: int | None


def note_plan_for_patient(*, user: User, appointment: Appointment) -> PatientPlan | None:
    """The plan of the appointment's signed note, for the appointment's
    patient only (None for anyone else and while the note is a draft).
    Audited when there is one to read."""
    if not user.is_authenticated or appointment.patient_id != user.pk:
        return None
    note = (
        ConsultNote.objects.select_related("author")
        .filter(appointment=appointment, status=NoteStatus.SIGNED)
        .only(
            "pk",
            "author__full_name",
            "signed_at",
            "patient_summary",
            "advice",
            "medications",
            "follow_up_after_days",
            "follow_up_appointment_id",
            "status",
        )
        .first()
    )
    if note is None or note.signed_at is None:
        return None
    audit_record(
        action=AuditAction.VIEW,
        actor=user,
        object_type="consult_note_plan",
        object_id=note.pk,
        patient=user,
        clinic_id=appointment.clinic_id,
    )
    return PatientPlan(
        note_id=note.pk,
        doctor_name=note.author.full_name,
        signed_at=note.signed_at,
        summary=note.patient_summary,
        advice=note.advice,
        medications=note.medications,
        follow_up_after_days=note.follow_up_after_days,
        follow_up_appointment_id=note.follow_up_appointment_id,
    )
