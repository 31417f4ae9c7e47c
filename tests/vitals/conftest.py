"""Vitals test data: Alice has an appointment with Bob at Carol's clinic
(so Bob is her doctor), a fixed "now", and helpers to record readings."""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine

from apps.accounts.models import User
from apps.clinics.models import Clinic
from apps.scheduling.models import Appointment
from apps.vitals.services import Recorded, reading_record
from tests.factories import make_doctor

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=SHANGHAI)

BP = {"systolic": 128, "diastolic": 82, "pulse": 70}
CRISIS = {"systolic": 190, "diastolic": 110, "pulse": 88}
GRADE_3 = {"systolic": 180, "diastolic": 100}


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def appointment(alice: User, bob: User, clinic: Clinic) -> Appointment:
    starts_at = NOW + timedelta(days=1)
    return Appointment.objects.create(
        patient=alice,
        doctor=bob,
        clinic=clinic,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=30),
        mode="video",
        booked_by=alice,
    )


@pytest.fixture
def dave(clinic: Clinic) -> User:
    """Another doctor of the same clinic, who has never seen Alice."""
    return make_doctor(clinic=clinic, full_name="Dave", email="dave@example.org", phone="+8613900000004")


def record(patient: User, by: User | None = None, **overrides: Any) -> Recorded:
    arguments: dict[str, Any] = {
        "kind": "blood_pressure",
        "values": BP,
        "measured_at": NOW - timedelta(minutes=10),
        "source": "manual",
    }
    arguments.update(overrides)
    return reading_record(patient=patient, by=by or patient, **arguments)
