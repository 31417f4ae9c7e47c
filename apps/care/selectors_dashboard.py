"""The doctor's dashboard and patient list: what a doctor sees of all their
patients at once, read in a fixed number of queries whatever the data size.

The doctor's patients are those of ``patients_of_doctor`` (apps/care
selectors: shared appointment, open referral, care team). Every read of
health data here is audited: one event per patient shown (``audit_record_many``,
a constant number of queries).

Readings overdue (the "numbers at a glance" and the patient list's filter):
a patient whose doctor set a target on their blood pressure or glucose
(``PatientTarget``), or who has an active diagnosis of hypertension (ICD-10
I10 to I15) or diabetes (E10 to E14), and whose latest reading of that kind is
older than ``CARE_READINGS_OVERDUE_DAYS`` days (7 by default), or who has
none (docs/care-dashboard.md).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce

from apps.accounts.models import User
from apps.audit.models import AuditAction
from apps.audit.services import AuditEntry, audit_record_many
from apps.care.models import Diagnosis, DiagnosisStatus, Referral
from apps.care.selectors import patient_ids_of_doctor, referrals_for_doctor
from apps.consults.models import ConsultState
from apps.consults.selectors import WaitingPatient, consults_waiting_for
from apps.core.lookups import IdIn
from apps.scheduling.models import Appointment, AppointmentStatus
from apps.vitals.kinds import GLUCOSE
from apps.vitals.models import Alert, AlertStatus, PatientTarget, Reading
from apps.vitals.selectors import alerts_open_triage

BLOOD_PRESSURE = "blood_pressure"
TRIAGE_LIMIT = 30  # alerts shown on the dashboard (the count says how many in all)
PATIENTS_PER_PAGE = 25
REFERRALS_LIMIT = 20
NEVER = datetime(1970, 1, 1, tzinfo=UTC)  # "no reading at all" is older than any cutoff
# ICD-10 code prefixes of the chronic problems that call for home readings.
CHRONIC_PREFIXES: dict[str, tuple[str, ...]] = {
    BLOOD_PRESSURE: ("I10", "I11", "I12", "I13", "I15"),
    GLUCOSE.code: ("E10", "E11", "E12", "E13", "E14"),
}


def overdue_days() -> int:
    return int(getattr(settings, "CARE_READINGS_OVERDUE_DAYS", 7))


# --- Whose data -----------------------------------------------------------------------


def doctor_patient_ids(*, doctor: User) -> list[int]:
    """The ids of the patients ``doctor`` sees (``patients_of_doctor``), read
    once a request (one query): the dashboard's parts and the list then look
    only at those rows (as a subquery, PostgreSQL would check the relation for
    every patient in each of them), passed as one array (``IdIn``)."""
    return patient_ids_of_doctor(doctor=doctor)


def _audit_patients(*, viewer: User, object_type: str, patient_ids: Sequence[int]) -> None:
    """One view event per patient whose health data is on the page."""
    patients = {pk: User(pk=pk) for pk in dict.fromkeys(patient_ids)}
    audit_record_many(
        actor=viewer,
        entries=[AuditEntry(AuditAction.VIEW, object_type, "list", patient=p) for p in patients.values()],
    )


# --- Today ------------------------------------------------------------------------------


class DayStatus:
    UPCOMING = "upcoming"
    WAITING = "waiting"
    IN_CONSULT = "in_consult"
    DONE = "done"
    NO_SHOW = "no_show"


@dataclass(frozen=True)
class TodayAppointment:
    appointment: Appointment
    status: str  # a DayStatus


def _zone_of(user: User) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(user.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.DEFAULT_USER_TIME_ZONE)


def day_bounds(*, zone: zoneinfo.ZoneInfo, now: datetime) -> tuple[datetime, datetime]:
    """Midnight to midnight of ``now``'s day in ``zone`` (23 or 25 hours on a DST change)."""
    today = now.astimezone(zone).date()
    start = datetime.combine(today, time.min, tzinfo=zone)
    end = datetime.combine(today + timedelta(days=1), time.min, tzinfo=zone)
    return start, end


def _day_status(appointment: Appointment, *, waiting_ids: set[int]) -> str:
    consult_state = getattr(appointment, "consult_state", None)
    if appointment.status == AppointmentStatus.NO_SHOW:
        return DayStatus.NO_SHOW
    if appointment.status == AppointmentStatus.COMPLETED or consult_state == ConsultState.ENDED:
        return DayStatus.DONE
    if consult_state == ConsultState.IN_PROGRESS:
        return DayStatus.IN_CONSULT
    if appointment.pk in waiting_ids:
        return DayStatus.WAITING
    return DayStatus.UPCOMING


def dashboard_today(*, doctor: User, now: datetime, waiting: Sequence[WaitingPatient]) -> list[TodayAppointment]:
    """The doctor's appointments of today in their own time zone (cancelled
    ones left out), each with where it stands: upcoming, waiting (the patient
    is in the room: ``waiting`` from ``consults_waiting_for``), in consult,
    done or no-show. One query."""
    start, end = day_bounds(zone=_zone_of(doctor), now=now)
    rows = (
        Appointment.objects.filter(doctor=doctor, starts_at__gte=start, starts_at__lt=end)
        .exclude(status=AppointmentStatus.CANCELLED)
        .select_related("patient", "clinic")
        .annotate(consult_state=F("consult__state"))
        .order_by("starts_at", "id")
    )
    waiting_ids = {patient.appointment_id for patient in waiting}
    return [TodayAppointment(row, _day_status(row, waiting_ids=waiting_ids)) for row in rows]


# --- Triage -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Triage:
    alerts: list[Alert]
    total: int


def dashboard_triage(*, doctor: User, patient_ids: list[int] | None = None, limit: int = TRIAGE_LIMIT) -> Triage:
    """The open alerts of the doctor's patients, critical first, then urgent,
    then attention, newest first within each, each with its patient and the
    reading or ECG that raised it; ``total`` counts them all. One query (two
    without ``patient_ids``; and the audit's, one event per patient shown)."""
    if patient_ids is None:
        patient_ids = doctor_patient_ids(doctor=doctor)
    alerts = list(alerts_open_triage(patient_ids=patient_ids, count_all=True)[:limit])
    total = getattr(alerts[0], "open_total", 0) if alerts else 0
    _audit_patients(viewer=doctor, object_type="alerts", patient_ids=[a.patient_id for a in alerts])
    return Triage(alerts=alerts, total=total)


# --- Numbers at a glance ----------------------------------------------------------------


def _expects_readings(kind: str, *, patient_ids: list[int]) -> Q:
    """Patients (users) for whom readings of ``kind`` are expected: a target
    on that kind, or an active chronic diagnosis that calls for them.

    As the sets of those among ``patient_ids`` (the doctor's) with such a
    target or diagnosis, which PostgreSQL reads once per query: a check per
    patient would have it hash every patient's diagnoses instead (a few
    milliseconds with 5,000 patients), even for a page of 25."""
    prefixes = Q()
    for prefix in CHRONIC_PREFIXES[kind]:
        prefixes |= Q(code__istartswith=prefix)
    of_patients = IdIn(F("patient_id"), patient_ids)
    targets = PatientTarget.objects.filter(of_patients, kind=kind)
    diagnoses = Diagnosis.objects.filter(of_patients, status=DiagnosisStatus.ACTIVE).filter(prefixes)
    return Q(pk__in=targets.values("patient_id")) | Q(pk__in=diagnoses.values("patient_id"))


_Patients = TypeVar("_Patients", bound=QuerySet[Any])


def _latest_measured_at(kind: str) -> Subquery:
    """When the patient's latest reading of ``kind`` was measured: one step
    down the patient-kind-time index per patient (a NOT EXISTS here would
    let PostgreSQL hash every recent reading of every patient instead)."""
    return Subquery(
        Reading.objects.filter(patient=OuterRef("pk"), kind=kind).order_by("-measured_at").values("measured_at")[:1]
    )


def _overdue(patients: _Patients, *, patient_ids: list[int], now: datetime) -> _Patients:
    """``patients`` (among ``patient_ids``) whose readings are overdue (see
    the module's docstring)."""
    cutoff = now - timedelta(days=overdue_days())
    condition = Q()
    annotations: dict[str, Coalesce] = {}
    for kind in (BLOOD_PRESSURE, GLUCOSE.code):
        latest = f"overdue_latest_{kind}"
        annotations[latest] = Coalesce(_latest_measured_at(kind), Value(NEVER))
        condition |= _expects_readings(kind, patient_ids=patient_ids) & Q(**{f"{latest}__lt": cutoff})
    return patients.annotate(**annotations).filter(condition)


@dataclass(frozen=True)
class Numbers:
    consults_today: int
    waiting_now: int
    open_alerts: int
    readings_overdue: int


def dashboard_numbers(
    *,
    patient_ids: list[int],
    now: datetime,
    today: Sequence[TodayAppointment],
    waiting: Sequence[WaitingPatient],
    triage: Triage,
) -> Numbers:
    """Consults today, patients waiting now, open alerts and patients with
    readings overdue (see the module's docstring): one query, the others are
    counted from what the dashboard read already."""
    overdue = _overdue(User.objects.filter(IdIn(F("pk"), patient_ids)), patient_ids=patient_ids, now=now)
    return Numbers(
        consults_today=len(today),
        waiting_now=len(waiting),
        open_alerts=triage.total,
        readings_overdue=overdue.count(),
    )


# --- Referrals ------------------------------------------------------------------------


def dashboard_referrals(*, doctor: User, limit: int = REFERRALS_LIMIT) -> list[Referral]:
    """Open referrals to the doctor (or their specialty), newest first: care's
    ``referrals_for_doctor``."""
    return list(referrals_for_doctor(doctor=doctor)[:limit])


# --- The whole dashboard ----------------------------------------------------------------


@dataclass(frozen=True)
class Dashboard:
    today: list[TodayAppointment]
    waiting: list[WaitingPatient]
    triage: Triage
    numbers: Numbers
    referrals: list[Referral] = field(default_factory=list)


def dashboard_for_doctor(*, doctor: User, now: datetime) -> Dashboard:
    """Everything the doctor's home shows, in a fixed number of queries."""
    waiting = consults_waiting_for(doctor=doctor, now=now)
    today = dashboard_today(doctor=doctor, now=now, waiting=waiting)
    patient_ids = doctor_patient_ids(doctor=doctor)
    triage = dashboard_triage(doctor=doctor, patient_ids=patient_ids)
    numbers = dashboard_numbers(patient_ids=patient_ids, now=now, today=today, waiting=waiting, triage=triage)
    return Dashboard(
        today=today,
        waiting=waiting,
        triage=triage,
        numbers=numbers,
        referrals=dashboard_referrals(doctor=doctor),
    )


# --- My patients ------------------------------------------------------------------------


@dataclass(frozen=True)
class PatientFilters:
    query: str = ""
    open_alerts: bool = False
    overdue: bool = False
    condition: str = ""  # an ICD-10 code prefix of an active diagnosis
    contact_from: date | None = None  # last contact on or after (the doctor's zone)
    contact_to: date | None = None  # … on or before


@dataclass
class PatientRow:
    patient: User
    open_alerts: int
    last_contact: datetime | None
    blood_pressure: Reading | None = None
    glucose: Reading | None = None
    readings_overdue: bool = False  # see the module's docstring


def _latest_reading_id(kind: str) -> Subquery:
    return Subquery(
        Reading.objects.filter(patient=OuterRef("pk"), kind=kind).order_by("-measured_at", "-id").values("pk")[:1]
    )


def patients_for_doctor(*, doctor: User, filters: PatientFilters, now: datetime) -> QuerySet[User]:
    """The doctor's patients matching ``filters``, by name, each annotated
    with their open alerts, last contact with the doctor (their latest
    appointment with them that has started, not cancelled) and the ids of
    their latest blood pressure and glucose readings."""
    past_appointments = (
        Appointment.objects.filter(patient=OuterRef("pk"), doctor=doctor, starts_at__lte=now)
        .exclude(status=AppointmentStatus.CANCELLED)
        .order_by("-starts_at")
        .values("starts_at")[:1]
    )
    open_alerts = (
        Alert.objects.filter(patient=OuterRef("pk"), status=AlertStatus.OPEN)
        .order_by()
        .values("patient")
        .annotate(n=Count("pk"))
        .values("n")
    )
    patient_ids = doctor_patient_ids(doctor=doctor)
    patients = User.objects.filter(IdIn(F("pk"), patient_ids)).annotate(
        open_alerts=Coalesce(Subquery(open_alerts, output_field=IntegerField()), Value(0)),
        last_contact=Subquery(past_appointments),
        latest_bp_id=_latest_reading_id(BLOOD_PRESSURE),
        latest_glucose_id=_latest_reading_id(GLUCOSE.code),
        expects_bp=ExpressionWrapper(
            _expects_readings(BLOOD_PRESSURE, patient_ids=patient_ids), output_field=BooleanField()
        ),
        expects_glucose=ExpressionWrapper(
            _expects_readings(GLUCOSE.code, patient_ids=patient_ids), output_field=BooleanField()
        ),
    )
    query = filters.query.strip()
    if query:
        digits = "".join(ch for ch in query if ch.isdigit())
        condition = Q(full_name__icontains=query)
        if len(digits) >= 4:
            condition |= Q(phone__contains=digits)
        patients = patients.filter(condition)
    if filters.open_alerts:
        patients = patients.filter(open_alerts__gt=0)
    if filters.overdue:
        patients = _overdue(patients, patient_ids=patient_ids, now=now)
    if filters.condition:
        diagnosed = Diagnosis.objects.filter(
            patient=OuterRef("pk"), status=DiagnosisStatus.ACTIVE, code__istartswith=filters.condition.strip()
        )
        patients = patients.filter(Exists(diagnosed))
    zone = _zone_of(doctor)
    if filters.contact_from is not None:
        patients = patients.filter(last_contact__gte=datetime.combine(filters.contact_from, time.min, tzinfo=zone))
    if filters.contact_to is not None:
        end = datetime.combine(filters.contact_to + timedelta(days=1), time.min, tzinfo=zone)
        patients = patients.filter(last_contact__lt=end)
    return patients.order_by("full_name", "pk")


def patients_page_for_doctor(
    *, doctor: User, filters: PatientFilters, page: str | int | None, now: datetime, per_page: int = PATIENTS_PER_PAGE
) -> tuple[Page[User], list[PatientRow]]:
    """One page of ``patients_for_doctor`` with each row's latest blood
    pressure and glucose readings: three queries whatever the data size (the
    count, the page, the readings), and the audit's."""
    paginator = Paginator(patients_for_doctor(doctor=doctor, filters=filters, now=now), per_page)
    page_obj = paginator.get_page(page)
    patients = list(page_obj.object_list)
    reading_ids = [
        pk
        for patient in patients
        for pk in (getattr(patient, "latest_bp_id", None), getattr(patient, "latest_glucose_id", None))
        if pk is not None
    ]
    readings = Reading.objects.in_bulk(reading_ids) if reading_ids else {}
    cutoff = now - timedelta(days=overdue_days())

    def row(patient: User) -> PatientRow:
        blood_pressure = readings.get(getattr(patient, "latest_bp_id", None) or 0)
        glucose = readings.get(getattr(patient, "latest_glucose_id", None) or 0)
        overdue = any(
            expected and (latest is None or latest.measured_at < cutoff)
            for expected, latest in (
                (getattr(patient, "expects_bp", False), blood_pressure),
                (getattr(patient, "expects_glucose", False), glucose),
            )
        )
        return PatientRow(
            patient=patient,
            open_alerts=getattr(patient, "open_alerts", 0),
            last_contact=getattr(patient, "last_contact", None),
            blood_pressure=blood_pressure,
            glucose=glucose,
            readings_overdue=overdue,
        )

    rows = [row(patient) for patient in patients]
    _audit_patients(viewer=doctor, object_type="patient_list", patient_ids=[p.pk for p in patients])
    return page_obj, rows
