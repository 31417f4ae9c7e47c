"""Shared scheduling test data: Bob's weekday hours at Alice's clinic, and a
fixed "now" (no wall clock in these tests)."""

from __future__ import annotations

import zoneinfo
from datetime import datetime, time

import pytest

from apps.accounts.models import User
from apps.clinics.models import Clinic
from apps.scheduling.models import Appointment, AvailabilityRule
from apps.scheduling.services import appointment_book

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=SHANGHAI)  # a Tuesday morning
TOMORROW_9 = datetime(2026, 12, 2, 9, 0, tzinfo=SHANGHAI)


@pytest.fixture
def hours(bob: User, clinic: Clinic) -> AvailabilityRule:
    return AvailabilityRule.objects.create(
        doctor=bob,
        clinic=clinic,
        weekdays=[0, 1, 2, 3, 4],
        start_time=time(9),
        end_time=time(12),
        slot_minutes=30,
        buffer_minutes=0,
        modes=["video", "phone"],
    )


def book(
    patient: User, doctor: User, clinic: Clinic, starts_at: datetime = TOMORROW_9, mode: str = "video"
) -> Appointment:
    return appointment_book(
        patient=patient,
        doctor=doctor,
        clinic=clinic,
        starts_at=starts_at,
        mode=mode,
        reason="Cough",
        booked_by=patient,
        now=NOW,
    )
