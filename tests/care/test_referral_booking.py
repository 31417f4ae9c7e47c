"""The real booking path books a referral: Alice books Erin through the
booking page (appointment_book), which moves Bob's referral to "booked";
rescheduling keeps it booked on the new appointment; cancelling reopens it."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from datetime import datetime, time

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.care.models import Referral, ReferralStatus
from apps.care.services import referral_create
from apps.clinics.models import Clinic
from apps.scheduling.models import Appointment, AppointmentStatus, AvailabilityRule
from apps.scheduling.services import appointment_cancel, appointment_reschedule
from tests.care.helpers import appointment_between

Login = Callable[[User], Client]
pytestmark = pytest.mark.sqlite

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=SHANGHAI)  # a Tuesday morning
TOMORROW_9 = datetime(2026, 12, 2, 9, 0, tzinfo=SHANGHAI)
TOMORROW_10 = datetime(2026, 12, 2, 10, 0, tzinfo=SHANGHAI)


@pytest.fixture
def referral(alice: User, bob: User, erin: User, clinic: Clinic, other_clinic: Clinic) -> Referral:
    AvailabilityRule.objects.create(
        doctor=erin,
        clinic=other_clinic,
        weekdays=[0, 1, 2, 3, 4],
        start_time=time(9),
        end_time=time(12),
        slot_minutes=30,
        buffer_minutes=0,
        modes=["video"],
    )
    with time_machine.travel(NOW, tick=False):
        appointment_between(patient=alice, doctor=bob, clinic=clinic, days=-7, status=AppointmentStatus.COMPLETED)
        return referral_create(patient=alice, from_doctor=bob, to_doctor=erin, reason="Palpitations at night")


def test_booking_from_the_page_books_the_referral(
    login: Login, alice: User, erin: User, other_clinic: Clinic, referral: Referral
) -> None:
    client = login(alice)
    with time_machine.travel(NOW, tick=False):
        week = client.get(reverse("care:referral_detail", args=[referral.pk])).content.decode()
        assert reverse("scheduling:doctor_week", args=[erin.pk, other_clinic.pk]) in week
        response = client.post(
            reverse("scheduling:book", args=[erin.pk, other_clinic.pk]),
            {"starts_at": TOMORROW_9.isoformat(), "mode": "video", "reason": ""},
        )
    assert response.status_code == 302, response.content.decode()[:500]
    referral.refresh_from_db()
    appointment = Appointment.objects.get(doctor=erin)
    assert (referral.status, referral.appointment) == (ReferralStatus.BOOKED, appointment)

    with time_machine.travel(NOW, tick=False):
        moved = appointment_reschedule(appointment=appointment, starts_at=TOMORROW_10, by=alice, now=NOW)
    referral.refresh_from_db()
    assert (referral.status, referral.appointment) == (ReferralStatus.BOOKED, moved)

    with time_machine.travel(NOW, tick=False):
        appointment_cancel(appointment=moved, by=alice, now=NOW)
    referral.refresh_from_db()
    assert (referral.status, referral.appointment) == (ReferralStatus.OPEN, None)
