"""Test data for the dashboard and patient list tests: a fixed "now", and
readings, alerts and appointments written directly where the rules of
booking or flagging are not what is tested."""

from __future__ import annotations

import itertools
import zoneinfo
from datetime import datetime, timedelta
from typing import Any

from apps.accounts.models import User
from apps.accounts.services import consent_give
from apps.clinics.models import Clinic
from apps.consults.models import Consult, ConsultPresence, ConsultState, ParticipantRole
from apps.scheduling.models import Appointment, AppointmentStatus, ConsultMode
from apps.vitals.models import Alert, Reading
from apps.vitals.services import reading_record
from tests.factories import PatientFactory

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)
BP = {"systolic": 128, "diastolic": 82, "pulse": 70}
CRISIS = {"systolic": 190, "diastolic": 110, "pulse": 88}
_slots = itertools.count()  # past appointments don't overlap (the doctor's exclusion constraint)


def appointment(
    *,
    patient: User,
    doctor: User,
    clinic: Clinic,
    starts_at: datetime,
    status: str = AppointmentStatus.BOOKED,
    mode: str = ConsultMode.VIDEO,
) -> Appointment:
    return Appointment.objects.create(
        patient=patient,
        doctor=doctor,
        clinic=clinic,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=20),
        mode=mode,
        status=status,
        booked_by=patient,
    )


def patient_of(doctor: User, clinic: Clinic, *, name: str, phone: str | None = None, **kwargs: Any) -> User:
    """A consenting patient with a past appointment with ``doctor``."""
    patient = PatientFactory(full_name=name, phone=phone, **kwargs)
    consent_give(patient=patient, given_by=patient)
    starts_at = NOW - timedelta(days=30) + timedelta(minutes=20 * next(_slots))
    appointment(patient=patient, doctor=doctor, clinic=clinic, starts_at=starts_at)
    return patient


def reading(patient: User, *, kind: str = "blood_pressure", values: dict[str, Any] | None = None, **kw: Any) -> Reading:
    arguments: dict[str, Any] = {
        "kind": kind,
        "values": values or BP,
        "measured_at": NOW - timedelta(hours=1),
        "source": "manual",
    }
    arguments.update(kw)
    return reading_record(patient=patient, by=patient, **arguments).reading


def alert(patient: User, *, severity: str, minutes_ago: int, values: dict[str, Any] | None = None) -> Alert:
    """An open alert of ``severity``, raised ``minutes_ago``, on a reading of its own."""
    raised_by = reading(patient, values=values or BP, measured_at=NOW - timedelta(minutes=minutes_ago))
    made = Alert.objects.create(patient=patient, reading=raised_by, severity=severity)
    Alert.objects.filter(pk=made.pk).update(created_at=NOW - timedelta(minutes=minutes_ago))
    made.refresh_from_db()
    return made


def in_the_room(appointment: Appointment, *, state: str = ConsultState.WAITING) -> Consult:
    """The appointment's patient has the consult room open now."""
    consult = Consult.objects.create(appointment=appointment, state=state)
    ConsultPresence.objects.create(
        consult=consult,
        user=appointment.patient,
        role=ParticipantRole.PATIENT,
        channel_name=f"test.{appointment.pk}",
        joined_at=NOW,
        seen_at=NOW,
    )
    return consult
