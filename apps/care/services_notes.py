"""Writing consult notes: start, autosave the draft (optimistic
concurrency on ``version``), diagnoses, sign (then immutable), addenda,
resolving a problem, booking the follow-up. Every write is audited in the
same transaction; a refusal (``NoteRefused``) writes nothing.

The callers (views) have already read the note or appointment through
selectors_notes, which applies the access rules; these functions check
again that ``by`` is the one who may write, so that no other caller can
forget it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import User
from apps.accounts.selectors import patient_can_be_seen_by_doctor
from apps.audit.models import AuditAction
from apps.audit.services import audit_record
from apps.care.icd10 import icd10_get
from apps.care.models import (
    ConsultNote,
    Diagnosis,
    DiagnosisStatus,
    NoteAddendum,
    NoteStatus,
    content_hash_of,
)
from apps.care.selectors_notes import note_writable_by
from apps.clinics.selectors import UserRole, user_roles
from apps.notifications.models import Category, Channel
from apps.notifications.services import notification_send, preferred_channels
from apps.scheduling.models import Appointment, AppointmentStatus
from apps.vitals.display import kind_label, reading_values_display
from apps.vitals.kinds import KINDS
from apps.vitals.selectors import glucose_unit_for, readings_last_values

TEXT_MAX_LENGTH = 10_000  # each SOAP field, medications, advice, summary
ADDENDUM_MAX_LENGTH = 5_000
FOLLOW_UP_MAX_DAYS = 365
PLAN_READY_TEMPLATE = "care/plan_ready"

# The draft's text fields, as the editor posts them.
TEXT_FIELDS = ("subjective", "objective", "assessment", "plan", "medications", "advice", "patient_summary")
DRAFT_FIELDS = (*TEXT_FIELDS, "follow_up_after_days")


class NoteRefused(Exception):
    """A change refused for a reason the doctor can act on: ``code`` for
    programs, ``message`` (translated) for people, ``field`` when one field
    is at fault."""

    MESSAGES: dict[str, Promise] = {
        "not_author": _("Only the doctor of this appointment can write its note."),
        "cancelled": _("This appointment was cancelled: it has no note."),
        "signed": _("This note is signed and can no longer change. Add an addendum instead."),
        "not_signed": _("Only a signed note takes addenda; change the draft instead."),
        "stale": _(
            "This note was changed elsewhere (another tab or device) since you opened it. "
            "Reload the page to see the latest text; your last changes were not saved."
        ),
        "unknown_field": _("This field is not part of a note."),
        "not_text": _("Enter text."),
        "too_long": _("This text is too long."),
        "bad_days": _("Enter a number of days between 1 and 365."),
        "assessment_required": _("Write an assessment before signing."),
        "plan_required": _("Write a plan before signing."),
        "summary_required": _("Write a summary of the plan for the patient before signing."),
        "diagnosis_required": _("Add at least one diagnosis, or tick “No diagnosis for this consult”."),
        "unknown_code": _("This is not a billable ICD-10-CM code. Search and pick one from the list."),
        "duplicate_code": _("This diagnosis is already in the note."),
        "empty_addendum": _("Write the addendum."),
        "not_draft_diagnosis": _("Diagnoses change only while the note is a draft."),
        "already_resolved": _("This problem is already resolved."),
    }

    def __init__(self, code: str, *, field: str | None = None) -> None:
        self.code = code
        self.field = field
        super().__init__(code)

    @property
    def message(self) -> str:
        return str(self.MESSAGES[self.code])


def _require_author(*, note: ConsultNote, by: User) -> None:
    if not note_writable_by(user=by, note=note):
        raise NoteRefused("not_author")


def _audit(
    *,
    action: str,
    by: User,
    note: ConsultNote,
    object_type: str = "consult_note",
    object_id: Any = None,
    reason: str = "",
) -> None:
    audit_record(
        action=action,
        actor=by,
        object_type=object_type,
        object_id=note.pk if object_id is None else object_id,
        patient=note.patient,
        clinic_id=note.appointment.clinic_id,
        reason=reason,
    )


# --- Starting the note -------------------------------------------------------------


def latest_readings_text(*, by: User, patient: User) -> str:
    """One line per kind of reading the patient has: the latest value and
    when it was taken, for the objective part. Read through vitals'
    selectors (access-checked and audited)."""
    unit = glucose_unit_for(user=patient)
    lines = []
    for kind in KINDS:
        reading = readings_last_values(user=by, patient=patient, kind=kind)
        if reading is None:
            continue
        when = timezone.localtime(reading.measured_at).strftime("%Y-%m-%d %H:%M")
        lines.append(f"{kind_label(kind)}: {reading_values_display(reading, glucose_unit=unit)} ({when})")
    return "\n".join(lines)


def consult_note_start(*, appointment: Appointment, by: User) -> ConsultNote:
    """The appointment's note, started as a draft by its doctor with the
    patient's latest readings in the objective part; the existing note if
    there is one already."""
    if appointment.doctor_id != by.pk or UserRole.DOCTOR not in user_roles(user=by):
        raise NoteRefused("not_author")
    if appointment.status == AppointmentStatus.CANCELLED:
        raise NoteRefused("cancelled")
    existing = ConsultNote.objects.filter(appointment=appointment).first()
    if existing is not None:
        return existing
    with transaction.atomic():
        with translation.override(by.language or None):
            objective = latest_readings_text(by=by, patient=appointment.patient)
        try:
            with transaction.atomic():
                note = ConsultNote.objects.create(
                    appointment=appointment,
                    patient=appointment.patient,
                    author=by,
                    objective=objective,
                )
        except IntegrityError:
            # Started at the same moment in another tab: theirs is the note.
            return ConsultNote.objects.get(appointment=appointment)
        _audit(action=AuditAction.CREATE, by=by, note=note)
    return note


# --- The draft ---------------------------------------------------------------------


def _clean_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for name, value in fields.items():
        if name not in DRAFT_FIELDS:
            raise NoteRefused("unknown_field", field=name)
        if name == "follow_up_after_days":
            cleaned[name] = _clean_days(value)
            continue
        if not isinstance(value, str):
            raise NoteRefused("not_text", field=name)
        text = value.replace("\r\n", "\n").replace("\x00", "")
        if len(text) > TEXT_MAX_LENGTH:
            raise NoteRefused("too_long", field=name)
        cleaned[name] = text
    return cleaned


def _clean_days(value: Any) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise NoteRefused("bad_days", field="follow_up_after_days")
    try:
        days = int(str(value).strip())
    except ValueError:
        raise NoteRefused("bad_days", field="follow_up_after_days") from None
    if not 1 <= days <= FOLLOW_UP_MAX_DAYS:
        raise NoteRefused("bad_days", field="follow_up_after_days")
    return days


def _locked(note: ConsultNote) -> ConsultNote:
    """The note's row as it is now, locked until the transaction ends."""
    fresh = ConsultNote.objects.select_for_update().select_related("appointment", "patient").get(pk=note.pk)
    return fresh


def consult_note_save_draft(*, note: ConsultNote, by: User, fields: Mapping[str, Any], version: int) -> ConsultNote:
    """Save the draft's fields if ``version`` is the note's current one (the
    version the editor loaded or last saved); else ``NoteRefused("stale")``
    and nothing is written. Returns the note with its new version."""
    _require_author(note=note, by=by)
    cleaned = _clean_fields(fields)
    with transaction.atomic():
        current = _locked(note)
        if current.status != NoteStatus.DRAFT:
            raise NoteRefused("signed")
        if current.version != version:
            raise NoteRefused("stale")
        changed = [name for name, value in cleaned.items() if getattr(current, name) != value]
        if not changed:
            return current
        for name in changed:
            setattr(current, name, cleaned[name])
        current.version += 1
        current.save(update_fields=[*changed, "version", "updated_at"])
        _audit(action=AuditAction.UPDATE, by=by, note=current, reason=",".join(changed))
    return current


# --- Diagnoses ---------------------------------------------------------------------


def diagnosis_add(*, note: ConsultNote, by: User, code: str, is_primary: bool = False) -> Diagnosis:
    """Add an ICD-10-CM diagnosis to a draft (a billable code of the list).
    The first diagnosis is primary; asking for primary moves it."""
    _require_author(note=note, by=by)
    found = icd10_get(code) if isinstance(code, str) else None
    if found is None:
        raise NoteRefused("unknown_code", field="code")
    with transaction.atomic():
        current = _locked(note)
        if current.status != NoteStatus.DRAFT:
            raise NoteRefused("signed")
        existing = list(current.diagnoses.all())
        if any(d.code == found.code for d in existing):
            raise NoteRefused("duplicate_code", field="code")
        primary = is_primary or not existing
        if primary:
            current.diagnoses.filter(is_primary=True).update(is_primary=False)
        diagnosis = Diagnosis.objects.create(
            note=current,
            patient=current.patient,
            code=found.code,
            description=found.description[:255],
            is_primary=primary,
        )
        _audit(
            action=AuditAction.CREATE,
            by=by,
            note=current,
            object_type="diagnosis",
            object_id=diagnosis.pk,  # not the code: clinic admins read the audit log, diagnoses are the doctors'
        )
    return diagnosis


def diagnosis_remove(*, note: ConsultNote, by: User, diagnosis_id: int) -> None:
    """Remove a diagnosis from a draft; the next one becomes primary if the
    primary one went."""
    _require_author(note=note, by=by)
    with transaction.atomic():
        current = _locked(note)
        if current.status != NoteStatus.DRAFT:
            raise NoteRefused("signed")
        diagnosis = current.diagnoses.filter(pk=diagnosis_id).first()
        if diagnosis is None:
            raise NoteRefused("not_draft_diagnosis")
        was_primary = diagnosis.is_primary
        diagnosis.delete()
        if was_primary:
            following = current.diagnoses.order_by("recorded_at", "id").first()
            if following is not None:
                following.is_primary = True
                following.save(update_fields=["is_primary"])
        _audit(
            action=AuditAction.DELETE,
            by=by,
            note=current,
            object_type="diagnosis",
            object_id=diagnosis_id,
        )


def diagnosis_resolve(*, diagnosis: Diagnosis, by: User) -> Diagnosis:
    """Mark a problem of the problem list resolved (a diagnosis of a signed
    note; the only change a signed note's diagnosis takes). Any doctor who
    may see the patient."""
    if not patient_can_be_seen_by_doctor(user=by, patient=diagnosis.patient):
        raise NoteRefused("not_author")
    with transaction.atomic():
        current = Diagnosis.objects.select_for_update().select_related("note", "note__appointment").get(pk=diagnosis.pk)
        if current.status == DiagnosisStatus.RESOLVED:
            raise NoteRefused("already_resolved")
        current.status = DiagnosisStatus.RESOLVED
        current.resolved_at = timezone.now()
        current.resolved_by = by
        current.save(update_fields=["status", "resolved_at", "resolved_by"])
        _audit(
            action=AuditAction.UPDATE,
            by=by,
            note=current.note,
            object_type="diagnosis",
            object_id=current.pk,
            reason="resolved",
        )
    return current


# --- Signing -----------------------------------------------------------------------


def _signed_content(note: ConsultNote, diagnoses: list[Diagnosis]) -> dict[str, Any]:
    return {
        **note.signed_content(),
        "note": note.pk,
        "appointment": note.appointment_id,
        "patient": note.patient_id,
        "signed_by": note.signed_by_id,
        "signed_at": note.signed_at.isoformat() if note.signed_at else None,
        "diagnoses": [{"code": d.code, "primary": d.is_primary} for d in diagnoses],
    }


def consult_note_sign(
    *, note: ConsultNote, by: User, no_diagnosis: bool = False, version: int | None = None
) -> ConsultNote:
    """Sign the draft: assessment, plan and the patient's summary written,
    at least one diagnosis (or ``no_diagnosis`` ticked); then it never
    changes again (later corrections are addenda). ``version`` (the one the
    doctor sees) guards against signing text changed elsewhere. The patient
    is told their plan is ready once this commits."""
    _require_author(note=note, by=by)
    with transaction.atomic():
        current = _locked(note)
        if current.status != NoteStatus.DRAFT:
            raise NoteRefused("signed")
        if version is not None and current.version != version:
            raise NoteRefused("stale")
        if not current.assessment.strip():
            raise NoteRefused("assessment_required", field="assessment")
        if not current.plan.strip():
            raise NoteRefused("plan_required", field="plan")
        if not current.patient_summary.strip():
            raise NoteRefused("summary_required", field="patient_summary")
        diagnoses = list(current.diagnoses.order_by("-is_primary", "code"))
        if not diagnoses and not no_diagnosis:
            raise NoteRefused("diagnosis_required", field="diagnoses")
        current.status = NoteStatus.SIGNED
        current.signed_at = timezone.now()
        current.signed_by = by
        current.content_hash = content_hash_of(_signed_content(current, diagnoses))
        current.save(update_fields=["status", "signed_at", "signed_by", "content_hash", "updated_at"])
        _audit(
            action=AuditAction.UPDATE,
            by=by,
            note=current,
            reason="signed" + ("; no diagnosis" if not diagnoses else ""),
        )
        _notify_plan_ready(current)
    return current


def consult_note_verify(*, note: ConsultNote) -> bool:
    """Whether a signed note's content still has the hash it was signed with."""
    if note.status != NoteStatus.SIGNED:
        return False
    diagnoses = list(note.diagnoses.order_by("-is_primary", "code"))
    return content_hash_of(_signed_content(note, diagnoses)) == note.content_hash


def _notify_plan_ready(note: ConsultNote) -> None:
    """In the app and by SMS, in the patient's language: the plan is ready
    (no health detail in the message: the link leads to it after signing
    in)."""
    patient = note.patient
    channels = {Channel.IN_APP, Channel.SMS} & preferred_channels(user=patient, category=Category.CONSULT)
    if not channels:
        return
    notification_send(
        recipient=patient,
        category=Category.CONSULT,
        template=PLAN_READY_TEMPLATE,
        context={
            "doctor": note.author.full_name,
            "starts_at": note.appointment.starts_at.isoformat(),
            "link": reverse("appointment_short", args=[note.appointment_id]),
        },
        idempotency_key=f"{PLAN_READY_TEMPLATE}:{note.pk}",
        clinic_id=note.appointment.clinic_id,
        channels=sorted(channels),
    )


# --- Addenda -----------------------------------------------------------------------


def note_addendum_add(*, note: ConsultNote, by: User, text: str) -> NoteAddendum:
    """A correction or addition to a signed note, signed and dated as it is
    written (it never changes either)."""
    _require_author(note=note, by=by)
    if not isinstance(text, str) or not text.strip():
        raise NoteRefused("empty_addendum", field="text")
    cleaned = text.strip().replace("\r\n", "\n").replace("\x00", "")
    if len(cleaned) > ADDENDUM_MAX_LENGTH:
        raise NoteRefused("too_long", field="text")
    with transaction.atomic():
        current = _locked(note)
        if current.status != NoteStatus.SIGNED:
            raise NoteRefused("not_signed")
        signed_at = timezone.now()
        addendum = NoteAddendum.objects.create(
            note=current,
            author=by,
            text=cleaned,
            signed_at=signed_at,
            content_hash=content_hash_of(
                {"note": current.pk, "author": by.pk, "text": cleaned, "signed_at": signed_at.isoformat()}
            ),
        )
        _audit(action=AuditAction.CREATE, by=by, note=current, object_type="note_addendum", object_id=addendum.pk)
    return addendum


# --- The follow-up -----------------------------------------------------------------


def note_follow_up_book(*, note: ConsultNote, by: User, starts_at: datetime, mode: str) -> Appointment:
    """Book the follow-up the note asks for with the same doctor and clinic
    (scheduling's ``appointment_book``, whose refusals pass through as
    ``BookingError``), and link it to the note (allowed after signing)."""
    from apps.scheduling.services import appointment_book

    _require_author(note=note, by=by)
    with transaction.atomic():
        appointment = appointment_book(
            patient=note.patient,
            doctor=by,
            clinic=note.appointment.clinic,
            starts_at=starts_at,
            mode=mode,
            reason=str(_("Follow-up")),
            booked_by=by,
        )
        current = _locked(note)
        current.follow_up_appointment = appointment
        current.save(update_fields=["follow_up_appointment", "updated_at"])
        _audit(action=AuditAction.UPDATE, by=by, note=current, reason=f"follow-up {appointment.pk}")
    return appointment
