"""Reads of readings, targets and alerts, with the access rules of
DESIGN.md: health data is private, every read goes through these functions
and into the audit log, and what the caller may not see is "not found"."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Case, Count, F, IntegerField, QuerySet, Subquery, Value, When
from django.http import Http404

from apps.accounts.models import User
from apps.accounts.selectors import patient_can_be_seen_by, patient_can_be_seen_by_doctor, patient_get_for_user
from apps.audit.models import AuditAction
from apps.audit.services import audit_access_denied, audit_record
from apps.clinics.models import Role
from apps.core.lookups import IdIn
from apps.vitals.flags import BpGuideline, Severity, Target
from apps.vitals.kinds import GLUCOSE_UNITS, MMOL_L, kind_get
from apps.vitals.models import Alert, AlertStatus, PatientTarget, Reading


def _is_patient(user: User) -> bool:
    return User.objects.filter(pk=user.pk, patient_profile__isnull=False).exists()


def _admin_of_a_clinic_of(*, user: User, patient: User) -> bool:
    """A clinic admin of a clinic where the patient has a (non-cancelled)
    appointment: the front desk of a village clinic enters readings."""
    from apps.scheduling.models import Appointment, AppointmentStatus

    return (
        Appointment.objects.filter(
            patient=patient,
            clinic__memberships__user=user,
            clinic__memberships__role=Role.ADMIN,
            clinic__memberships__is_active=True,
            clinic__is_active=True,
        )
        .exclude(status=AppointmentStatus.CANCELLED)
        .exists()
    )


def reading_entry_allowed(*, user: User, patient: User) -> bool:
    """Who may record a reading for ``patient``: the patient, a doctor who
    sees their record, or an admin of a clinic they are booked at. One
    condition per line."""
    if not user.is_authenticated:
        return False
    if not _is_patient(patient):
        return False
    if patient_can_be_seen_by(user=user, patient=patient):
        return True
    if _admin_of_a_clinic_of(user=user, patient=patient):  # noqa: SIM103  # one rule per line
        return True
    return False


def patient_get_for_reading_entry(*, user: User, patient_id: int) -> User:
    """The patient, if ``user`` may record readings for them; else "not found" (audited)."""
    patient = User.objects.filter(pk=patient_id, patient_profile__isnull=False).first()
    if patient is None or not reading_entry_allowed(user=user, patient=patient):
        audit_access_denied(actor=user, object_type="readings", object_id=patient_id)
        raise Http404
    return patient


def readings_for_user(
    *,
    user: User,
    patient_id: int,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[Reading]:
    """A patient's readings, newest first, for the patient or a doctor who
    sees their record (clinic admins do not read clinical data). The read
    is audited once per call."""
    patient = patient_get_for_user(user=user, patient_id=patient_id)
    readings = Reading.objects.filter(patient=patient)
    if kind:
        readings = readings.filter(kind=kind)
    if since is not None:
        readings = readings.filter(measured_at__gte=since)
    if until is not None:
        readings = readings.filter(measured_at__lt=until)
    audit_record(
        action=AuditAction.VIEW,
        actor=user,
        object_type="readings",
        object_id=f"{kind or 'all'}",
        patient=patient,
    )
    return readings.order_by("-measured_at", "-id")


def readings_last_values(*, user: User, patient: User, kind: str) -> Reading | None:
    """The patient's latest reading of ``kind``, as a hint on the entry
    page, for those who may read their record (else None)."""
    if not patient_can_be_seen_by(user=user, patient=patient):
        return None
    return readings_for_user(user=user, patient_id=patient.pk, kind=kind).first()


def reading_targets(*, patient: User) -> dict[str, list[Target]]:
    """The targets a doctor set for ``patient``, by kind of reading, in one
    query (for the flags and the chart's bands; no access check: called by
    code that already made one)."""
    targets: dict[str, list[Target]] = defaultdict(list)
    for row in PatientTarget.objects.filter(patient=patient):
        targets[row.kind].append(Target(field=row.field, low=row.low, high=row.high))
    return targets


def bp_guideline_for(*, patient: User) -> str:
    """The blood-pressure guideline in use (the site's setting; a clinic
    setting may come later)."""
    chosen = getattr(settings, "VITALS_BP_GUIDELINE", BpGuideline.CHINA_2018)
    return chosen if chosen in BpGuideline.values else BpGuideline.CHINA_2018


def glucose_unit_for(*, user: User) -> str:
    """The unit a user enters and reads glucose in: a patient's profile
    setting, else the site's default (mmol/L)."""
    unit = getattr(getattr(user, "patient_profile", None), "glucose_unit", None)
    if unit in GLUCOSE_UNITS:
        return str(unit)
    default = getattr(settings, "VITALS_GLUCOSE_UNIT", MMOL_L)
    return default if default in GLUCOSE_UNITS else MMOL_L


def patient_doctors(*, patient: User) -> list[tuple[User, int]]:
    """The patient's doctors, each with the clinic of their latest
    (non-cancelled) appointment with the patient: who an alert goes to."""
    from apps.scheduling.models import Appointment, AppointmentStatus

    appointments = (
        Appointment.objects.filter(patient=patient)
        .exclude(status=AppointmentStatus.CANCELLED)
        .select_related("doctor")
        .order_by("doctor_id", "-starts_at")
    )
    seen: dict[int, tuple[User, int]] = {}
    for appointment in appointments:
        seen.setdefault(appointment.doctor_id, (appointment.doctor, appointment.clinic_id))
    return list(seen.values())


def alerts_open_for_patient(*, user: User, patient_id: int) -> QuerySet[Alert]:
    patient = patient_get_for_user(user=user, patient_id=patient_id)
    audit_record(action=AuditAction.VIEW, actor=user, object_type="alerts", object_id="open", patient=patient)
    return Alert.objects.filter(patient=patient, status=AlertStatus.OPEN).select_related("reading")


def kind_exists(code: str) -> bool:
    try:
        kind_get(code)
    except KeyError:
        return False
    return True


def reading_get_for_user(*, user: User, reading_id: int) -> Reading:
    """One reading, for those who read the patient's record, or the person
    who entered it (a clinic admin sees what they typed, and its advice)."""
    reading = Reading.objects.select_related("patient", "entered_by").filter(pk=reading_id).first()
    allowed = reading is not None and (
        reading.entered_by_id == user.pk or patient_can_be_seen_by(user=user, patient=reading.patient)
    )
    if reading is None or not allowed:
        audit_access_denied(actor=user, object_type="reading", object_id=reading_id)
        raise Http404
    audit_record(
        action=AuditAction.VIEW, actor=user, object_type="reading", object_id=reading.pk, patient=reading.patient
    )
    return reading


def patients_for_reading_entry(*, user: User, query: str = "", limit: int = 100) -> list[User]:
    """Patients a doctor or clinic admin may record readings for: those with
    a (non-cancelled) appointment with the doctor or at the admin's clinic.
    ``query`` matches the name or phone number."""
    from django.db.models import Q

    from apps.scheduling.models import Appointment, AppointmentStatus

    appointments = Appointment.objects.exclude(status=AppointmentStatus.CANCELLED).filter(
        Q(doctor=user)
        | Q(
            clinic__memberships__user=user,
            clinic__memberships__role=Role.ADMIN,
            clinic__memberships__is_active=True,
        )
    )
    patients = User.objects.filter(pk__in=appointments.values("patient_id"), patient_profile__isnull=False)
    if query:
        digits = "".join(ch for ch in query if ch.isdigit())
        condition = Q(full_name__icontains=query)
        if len(digits) >= 4:
            condition |= Q(phone__contains=digits)
        patients = patients.filter(condition)
    return list(patients.order_by("full_name")[:limit])


# --- Triage ----------------------------------------------------------------------

# Critical first, then urgent, then attention (then anything else).
TRIAGE_RANK = Case(
    When(severity=Severity.CRITICAL, then=Value(0)),
    When(severity=Severity.URGENT, then=Value(1)),
    When(severity=Severity.ATTENTION, then=Value(2)),
    default=Value(3),
    output_field=IntegerField(),
)


def alerts_open_triage(*, patient_ids: Collection[int] | QuerySet[Any], count_all: bool = False) -> QuerySet[Alert]:
    """The open alerts of ``patient_ids`` (user ids, or a queryset of them) in triage
    order: critical, urgent, attention, newest first within each, with the
    patient and the reading or ECG recording that raised each (one query).
    ``count_all``: each row also carries ``open_total``, the number of all
    these open alerts, so that a page of the queue and its length are one
    query. No access check and no audit here: the caller passes the patients
    its viewer may see and audits what it shows (apps/care/selectors_dashboard)."""
    alerts = Alert.objects.filter(status=AlertStatus.OPEN)
    if isinstance(patient_ids, QuerySet):
        alerts = alerts.filter(patient_id__in=patient_ids)
    else:
        alerts = alerts.filter(IdIn(F("patient_id"), list(patient_ids)))
    if count_all:
        total = alerts.order_by().values("status").annotate(n=Count("pk")).values("n")
        alerts = alerts.annotate(open_total=Subquery(total, output_field=IntegerField()))
    return (
        alerts.annotate(triage_rank=TRIAGE_RANK)
        .select_related("patient", "reading", "ecg_recording")
        .order_by("triage_rank", "-created_at", "-id")
    )


def alert_get_for_doctor(*, user: User, alert_id: int) -> Alert:
    """One alert, for a doctor who sees the patient's record; anyone else
    (and an unknown id) gets "not found", audited."""
    alert = Alert.objects.select_related("patient", "reading", "ecg_recording").filter(pk=alert_id).first()
    allowed = alert is not None and patient_can_be_seen_by_doctor(user=user, patient=alert.patient)
    if alert is None or not allowed:
        audit_access_denied(actor=user, object_type="alert", object_id=alert_id)
        raise Http404
    return alert
