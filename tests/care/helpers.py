"""Test data for the care tests."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from apps.accounts.models import User
from apps.clinics.models import Clinic
from apps.scheduling.models import Appointment, AppointmentStatus, ConsultMode


def appointment_between(
    *, patient: User, doctor: User, clinic: Clinic, days: float = 0, status: str = AppointmentStatus.BOOKED
) -> Appointment:
    """An appointment written directly (no booking rules): ``days`` from now."""
    starts_at = timezone.now().replace(microsecond=0) + timedelta(days=days)
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
