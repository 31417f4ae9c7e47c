"""Reads for the FHIR endpoints, with the access rules of DESIGN.md (through
``patient_get_for_user`` and the vitals selectors): what the caller may not
see is "not found". A single resource is audited as a view (by the vitals
selectors it goes through); every search, ``$everything`` and the
patient's own export is audited once as an export. Each read costs a fixed
number of queries, whatever the size of the record."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.db.models.lookups import GreaterThanOrEqual, LessThan
from django.http import Http404

from apps.accounts.models import PatientProfile, User
from apps.accounts.selectors import patient_can_be_seen_by, patient_get_for_user
from apps.audit.models import AuditAction
from apps.audit.services import audit_access_denied, audit_record
from apps.care.models import Diagnosis, NoteStatus
from apps.scheduling.models import Appointment, AppointmentStatus
from apps.vitals.models import EcgRecording, Reading
from apps.vitals.selectors import reading_get_for_user
from apps.vitals.selectors_ecg import ecg_recording_get_for_user


def _refuse(*, user: User, object_type: str, object_id: Any) -> NoReturn:
    audit_access_denied(actor=user, object_type=object_type, object_id=object_id)
    raise Http404


def _export_audit(*, user: User, patient: User, object_type: str, object_id: str = "") -> None:
    audit_record(action=AuditAction.EXPORT, actor=user, object_type=object_type, object_id=object_id, patient=patient)


# --- Observations ------------------------------------------------------------------


def observation_get_for_user(*, user: User, observation_id: str) -> Reading | EcgRecording:
    """The reading (``reading-<id>``) or ECG recording (``ecg-<id>``) behind
    an Observation id, for those who may read it (audited as a view)."""
    prefix, _sep, number = observation_id.partition("-")
    if not number.isdigit() or prefix not in {"reading", "ecg"}:
        _refuse(user=user, object_type="fhir_observation", object_id=observation_id[:64])
    if prefix == "reading":
        return reading_get_for_user(user=user, reading_id=int(number))
    return ecg_recording_get_for_user(user=user, recording_id=int(number))


def _readings(patient: User) -> QuerySet[Reading]:
    return Reading.objects.filter(patient=patient)


# When an ECG was recorded: the file's own time, else its upload.
EFFECTIVE = Coalesce("recorded_at", "created_at")


def _recordings(patient: User) -> QuerySet[EcgRecording]:
    return EcgRecording.objects.filter(patient=patient)


@dataclass(frozen=True)
class ObservationQuery:
    kinds: frozenset[str] | None = None  # None: every kind of reading
    ecg: bool = True
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    offset: int = 0
    count: int = 50


@dataclass(frozen=True)
class ObservationPage:
    patient: User
    total: int
    items: list[Reading | EcgRecording] = field(default_factory=list)


def observations_search(*, user: User, patient_id: int, query: ObservationQuery) -> ObservationPage:
    """One page of a patient's Observations (readings and ECG recordings),
    newest first: a fixed number of queries (the counts, the page's keys
    in one UNION query, then its rows)."""
    patient = patient_get_for_user(user=user, patient_id=patient_id)
    _export_audit(user=user, patient=patient, object_type="fhir_observations", object_id="search")
    readings = _readings(patient)
    recordings = _recordings(patient)
    if query.kinds is not None:
        readings = readings.filter(kind__in=query.kinds) if query.kinds else readings.none()
    if not query.ecg:
        recordings = recordings.none()
    if query.since is not None:
        readings = readings.filter(measured_at__gte=query.since)
        recordings = recordings.filter(GreaterThanOrEqual(EFFECTIVE, query.since))
    if query.until is not None:
        readings = readings.filter(measured_at__lt=query.until)
        recordings = recordings.filter(LessThan(EFFECTIVE, query.until))
    total = readings.count() + recordings.count()
    keys = (
        readings.annotate(effective=F("measured_at"), source_kind=Value(0))
        .values_list("effective", "id", "source_kind")
        .order_by()
        .union(
            recordings.annotate(effective=EFFECTIVE, source_kind=Value(1))
            .values_list("effective", "id", "source_kind")
            .order_by(),
            all=True,
        )
        .order_by("-effective", "-source_kind", "-id")[query.offset : query.offset + query.count]
    )
    page = list(keys)
    reading_ids = [row_id for _t, row_id, source in page if source == 0]
    recording_ids = [row_id for _t, row_id, source in page if source == 1]
    by_key: dict[tuple[int, int], Reading | EcgRecording] = {}
    if reading_ids:
        for reading in Reading.objects.filter(pk__in=reading_ids).select_related("patient", "entered_by"):
            by_key[(0, reading.pk)] = reading
    if recording_ids:
        for recording in EcgRecording.objects.filter(pk__in=recording_ids).select_related("patient", "uploaded_by"):
            by_key[(1, recording.pk)] = recording
    items = [by_key[(source, row_id)] for _t, row_id, source in page if (source, row_id) in by_key]
    return ObservationPage(patient=patient, total=total, items=items)


# --- Appointments, encounters and conditions ---------------------------------------------


def _appointments(patient: User) -> QuerySet[Appointment]:
    return (
        Appointment.objects.filter(patient=patient)
        .select_related("patient", "doctor", "clinic", "consult")
        .order_by("-starts_at", "-id")
    )


def _encounters(patient: User) -> QuerySet[Appointment]:
    """Appointments that took place: completed, or whose consult started."""
    return (
        _appointments(patient)
        .filter(Q(status=AppointmentStatus.COMPLETED) | Q(consult__started_at__isnull=False))
        .exclude(status=AppointmentStatus.CANCELLED)
    )


def _conditions(patient: User) -> QuerySet[Diagnosis]:
    """The diagnoses of the patient's signed notes (drafts are not yet part of the record)."""
    return (
        Diagnosis.objects.filter(patient=patient, note__status=NoteStatus.SIGNED)
        .select_related("patient", "note", "note__author", "note__appointment")
        .order_by("-recorded_at", "-id")
    )


@dataclass(frozen=True)
class Page:
    patient: User
    total: int
    items: list[Any]


def _page(queryset: QuerySet[Any], *, offset: int, count: int, patient: User) -> Page:
    return Page(patient=patient, total=queryset.count(), items=list(queryset[offset : offset + count]))


def appointments_search(*, user: User, patient_id: int, offset: int, count: int) -> Page:
    patient = patient_get_for_user(user=user, patient_id=patient_id)
    _export_audit(user=user, patient=patient, object_type="fhir_appointments", object_id="search")
    return _page(_appointments(patient), offset=offset, count=count, patient=patient)


def encounters_search(*, user: User, patient_id: int, offset: int, count: int) -> Page:
    patient = patient_get_for_user(user=user, patient_id=patient_id)
    _export_audit(user=user, patient=patient, object_type="fhir_encounters", object_id="search")
    return _page(_encounters(patient), offset=offset, count=count, patient=patient)


def conditions_search(*, user: User, patient_id: int, offset: int, count: int) -> Page:
    patient = patient_get_for_user(user=user, patient_id=patient_id)
    _export_audit(user=user, patient=patient, object_type="fhir_conditions", object_id="search")
    return _page(_conditions(patient), offset=offset, count=count, patient=patient)


def _appointment_visible(*, user: User, appointment_id: int, object_type: str) -> Appointment:
    appointment = (
        Appointment.objects.select_related("patient", "doctor", "clinic", "consult").filter(pk=appointment_id).first()
    )
    if appointment is None or not patient_can_be_seen_by(user=user, patient=appointment.patient):
        _refuse(user=user, object_type=object_type, object_id=appointment_id)
    audit_record(
        action=AuditAction.VIEW,
        actor=user,
        object_type=object_type,
        object_id=appointment.pk,
        patient=appointment.patient,
    )
    return appointment


def appointment_get_for_fhir(*, user: User, appointment_id: int) -> Appointment:
    """One appointment, for those who read the patient's record."""
    return _appointment_visible(user=user, appointment_id=appointment_id, object_type="fhir_appointment")


def encounter_get_for_fhir(*, user: User, appointment_id: int) -> Appointment:
    """The appointment behind an Encounter (it took place), for those who read the patient's record."""
    appointment = _appointment_visible(user=user, appointment_id=appointment_id, object_type="fhir_encounter")
    if not _encounters(appointment.patient).filter(pk=appointment.pk).exists():
        raise Http404
    return appointment


def condition_get_for_fhir(*, user: User, diagnosis_id: int) -> Diagnosis:
    diagnosis = (
        Diagnosis.objects.select_related("patient", "note", "note__author", "note__appointment")
        .filter(pk=diagnosis_id, note__status=NoteStatus.SIGNED)
        .first()
    )
    if diagnosis is None or not patient_can_be_seen_by(user=user, patient=diagnosis.patient):
        _refuse(user=user, object_type="fhir_condition", object_id=diagnosis_id)
    audit_record(
        action=AuditAction.VIEW,
        actor=user,
        object_type="fhir_condition",
        object_id=diagnosis.pk,
        patient=diagnosis.patient,
    )
    return diagnosis


# --- The whole record ------------------------------------------------------------------


@dataclass(frozen=True)
class PatientRecord:
    patient: User
    profile: PatientProfile
    readings: list[Reading]
    recordings: list[EcgRecording]
    appointments: list[Appointment]
    conditions: list[Diagnosis]

    @property
    def encounters(self) -> list[Appointment]:
        return [a for a in self.appointments if appointment_took_place(a)]


def appointment_took_place(appointment: Appointment) -> bool:
    if appointment.status == AppointmentStatus.CANCELLED:
        return False
    if appointment.status == AppointmentStatus.COMPLETED:
        return True
    consult = getattr(appointment, "consult", None)
    return consult is not None and consult.started_at is not None


def patient_record_for_user(*, user: User, patient_id: int, object_type: str = "fhir_everything") -> PatientRecord:
    """Everything of a patient's record that FHIR exports, for the patient
    and the doctors who see it: audited once as an export; a fixed number
    of queries whatever its size."""
    patient = patient_get_for_user(user=user, patient_id=patient_id)
    profile = PatientProfile.objects.select_related("user").get(user=patient)
    _export_audit(user=user, patient=patient, object_type=object_type, object_id=str(patient.pk))
    return PatientRecord(
        patient=profile.user,
        profile=profile,
        readings=list(_readings(patient).select_related("patient", "entered_by").order_by("-measured_at", "-id")),
        recordings=list(
            _recordings(patient).select_related("patient", "uploaded_by").order_by(EFFECTIVE.desc(), "-id")
        ),
        appointments=list(_appointments(patient)),
        conditions=list(_conditions(patient)),
    )


def patient_profile_for_fhir(*, user: User, patient_id: int) -> PatientProfile:
    """The patient's demographics (audited as a view)."""
    patient = patient_get_for_user(user=user, patient_id=patient_id)
    profile = PatientProfile.objects.select_related("user").get(user=patient)
    audit_record(action=AuditAction.VIEW, actor=user, object_type="fhir_patient", object_id=patient.pk, patient=patient)
    return profile
