from __future__ import annotations

from datetime import timedelta

import pytest

from apps.accounts.models import User
from apps.accounts.services import consent_give
from apps.clinics.models import Clinic
from apps.scheduling.models import Appointment, AvailabilityRule
from apps.scheduling.services import (
    AppointmentChangeError,
    BookingError,
    appointment_cancel,
    appointment_mark,
    appointment_reschedule,
)
from tests.factories import PatientFactory
from tests.scheduling.conftest import NOW, TOMORROW_9, book

pytestmark = pytest.mark.usefixtures("hours")


@pytest.fixture
def booked(alice: User, bob: User, clinic: Clinic) -> Appointment:
    return book(alice, bob, clinic)


@pytest.mark.sqlite
def test_a_patient_cancels_before_the_cutoff(booked: Appointment, alice: User) -> None:
    cancelled = appointment_cancel(appointment=booked, by=alice, now=NOW)
    assert cancelled.status == "cancelled"
    assert cancelled.cancelled_by == alice


def test_a_patient_cannot_cancel_after_the_cutoff(booked: Appointment, alice: User) -> None:
    with pytest.raises(AppointmentChangeError) as refused:
        appointment_cancel(appointment=booked, by=alice, now=booked.starts_at - timedelta(hours=2))
    assert refused.value.code == "past_cutoff"
    booked.refresh_from_db()
    assert booked.status == "booked"


def test_staff_override_the_cutoff_with_a_reason(booked: Appointment, carol: User) -> None:
    late = booked.starts_at - timedelta(hours=2)
    with pytest.raises(AppointmentChangeError) as refused:
        appointment_cancel(appointment=booked, by=carol, staff=True, now=late)
    assert refused.value.code == "reason_needed"
    cancelled = appointment_cancel(appointment=booked, by=carol, staff=True, reason="Doctor ill", now=late)
    assert cancelled.cancel_reason == "Doctor ill"


def test_a_cancelled_appointment_frees_the_slot(booked: Appointment, alice: User, bob: User, clinic: Clinic) -> None:
    appointment_cancel(appointment=booked, by=alice, now=NOW)
    again = book(alice, bob, clinic)
    assert again.status == "booked"


def test_cancelling_twice_is_refused(booked: Appointment, alice: User) -> None:
    appointment_cancel(appointment=booked, by=alice, now=NOW)
    with pytest.raises(AppointmentChangeError) as refused:
        appointment_cancel(appointment=booked, by=alice, now=NOW)
    assert refused.value.code == "not_active"


@pytest.mark.sqlite
def test_a_reschedule_moves_the_appointment_in_one_step(booked: Appointment, alice: User) -> None:
    moved = appointment_reschedule(appointment=booked, starts_at=TOMORROW_9 + timedelta(minutes=30), by=alice, now=NOW)
    booked.refresh_from_db()
    assert booked.status == "cancelled"
    assert moved.rescheduled_from == booked
    assert moved.status == "booked"
    assert Appointment.objects.filter(status="booked").count() == 1


def test_a_reschedule_may_overlap_the_old_time(booked: Appointment, alice: User, bob: User, clinic: Clinic) -> None:
    AvailabilityRule.objects.create(
        doctor=bob,
        clinic=clinic,
        weekdays=[2],
        start_time=TOMORROW_9.time().replace(minute=15),
        end_time=TOMORROW_9.time().replace(hour=11),
        slot_minutes=30,
        modes=["video"],
    )
    moved = appointment_reschedule(appointment=booked, starts_at=TOMORROW_9 + timedelta(minutes=15), by=alice, now=NOW)
    assert moved.starts_at == TOMORROW_9 + timedelta(minutes=15)


def test_a_failed_reschedule_changes_nothing(booked: Appointment, alice: User, bob: User, clinic: Clinic) -> None:
    other = PatientFactory()
    consent_give(patient=other, given_by=other)
    taken = book(other, bob, clinic, starts_at=TOMORROW_9 + timedelta(minutes=30))
    with pytest.raises(BookingError) as refused:
        appointment_reschedule(appointment=booked, starts_at=taken.starts_at, by=alice, now=NOW)
    assert refused.value.code == "slot_taken"
    booked.refresh_from_db()
    assert booked.status == "booked"
    assert Appointment.objects.filter(status="booked").count() == 2


def test_staff_mark_completed_and_no_show_once_the_time_has_come(booked: Appointment, bob: User) -> None:
    with pytest.raises(AppointmentChangeError) as refused:
        appointment_mark(appointment=booked, status="completed", by=bob, now=NOW)
    assert refused.value.code == "not_started"
    done = appointment_mark(appointment=booked, status="no_show", by=bob, now=booked.starts_at + timedelta(minutes=20))
    assert done.status == "no_show"
    with pytest.raises(AppointmentChangeError) as refused:
        appointment_mark(appointment=booked, status="booked", by=bob, now=NOW)
    assert refused.value.code == "bad_status"
