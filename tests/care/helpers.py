"""Test data for the care tests."""

from __future__ import annotations

import itertools
from datetime import timedelta

from django.utils import timezone

from apps.accounts.models import User
from apps.clinics.models import Clinic
from apps.scheduling.models import Appointment, AppointmentStatus, ConsultMode

_slots = itertools.count()


def appointment_between(
    *, patient: User, doctor: User, clinic: Clinic, days: float = 0, status: str = AppointmentStatus.BOOKED
) -> Appointment:
    """An appointment written directly (no booking rules): ``days`` from now,
    plus half an hour per earlier call, so that a doctor's never overlap."""
    starts_at = timezone.now().replace(microsecond=0) + timedelta(days=days, minutes=30 * next(_slots))
    return Appointment.objects.create(
        patient=patient,
        doctor=doctor,
        clinic=clinic,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=20),
        mode=ConsultMode.VIDEO,
        status=status,
        booked_by=patient,
    )
