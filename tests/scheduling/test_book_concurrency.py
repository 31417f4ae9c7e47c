"""People pressing "book" or "move" at the same moment: the database lets
exactly one of any overlapping pair through, and tells everyone else why.
Real threads, each with its own database connection, released together."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, time, timedelta
from functools import partial

import pytest
from django.db import connection, connections

from apps.accounts.models import User
from apps.accounts.services import consent_give
from apps.clinics.models import Clinic
from apps.scheduling.models import HOLDING_STATUSES, Appointment, AppointmentStatus, AvailabilityRule
from apps.scheduling.services import Refusal, appointment_reschedule
from tests.factories import ClinicFactory, PatientFactory, make_doctor
from tests.scheduling.conftest import NOW, SHANGHAI, TOMORROW_9, book

pytestmark = [pytest.mark.sqlite, pytest.mark.django_db(transaction=True)]

RACERS = 50
ROUNDS = 20  # one race a day, so each round starts from an empty day


def _race(attempts: Sequence[Callable[[], object]]) -> list[str]:
    """Run each attempt in its own thread on its own connection, all released
    at once; each one's outcome, in order: "booked" or the refusal's code."""
    outcomes = [""] * len(attempts)
    start = threading.Barrier(len(attempts))

    def run(index: int, attempt: Callable[[], object]) -> None:
        try:
            start.wait()
            attempt()
            result = "booked"
        except Refusal as refused:
            result = refused.code
        except Exception as exc:  # anything else is a bug the test must show
            result = f"error: {exc.__class__.__name__}: {exc}"
        finally:
            connections.close_all()
        outcomes[index] = result

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a racer is stuck"
    return outcomes


def _patients(count: int) -> list[User]:
    patients = []
    for _ in range(count):
        patient = PatientFactory()
        consent_give(patient=patient, given_by=patient)
        patients.append(patient)
    return patients


def _hours(doctor: User, clinic: Clinic, *spans: tuple[time, time, int]) -> None:
    """Every day, one rule per (from, until, slot minutes)."""
    for start, end, minutes in spans:
        AvailabilityRule.objects.create(
            doctor=doctor,
            clinic=clinic,
            weekdays=list(range(7)),
            start_time=start,
            end_time=end,
            slot_minutes=minutes,
            modes=["video"],
        )


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    """``hour:minute`` (clinic time) ``day`` days after tomorrow."""
    return datetime.combine(TOMORROW_9.date() + timedelta(days=day), time(hour, minute), tzinfo=SHANGHAI)


def _holding(*, day: int | None = None, **filters: object) -> list[Appointment]:
    """Appointments that hold their time (on ``day`` only, when given)."""
    rows = Appointment.objects.filter(status__in=HOLDING_STATUSES, **filters)
    if day is not None:
        rows = rows.filter(starts_at__gte=_at(day, 0), starts_at__lt=_at(day + 1, 0))
    return list(rows)


def test_fifty_patients_race_for_one_slot_and_one_wins() -> None:
    clinic = ClinicFactory()
    doctor = make_doctor(clinic=clinic, mfa=False)
    _hours(doctor, clinic, (time(9), time(10), 30))
    outcomes = _race([partial(book, patient, doctor, clinic) for patient in _patients(RACERS)])
    assert Counter(outcomes) == Counter({"booked": 1, "slot_taken": RACERS - 1}), (connection.vendor, outcomes)
    assert Appointment.objects.filter(doctor=doctor).count() == 1


@pytest.fixture
def overlapping_hours() -> tuple[User, Clinic]:
    """A doctor whose rules overlap: 30 minutes at 09:00, 20 at 09:20 (which
    overlaps it), 20 at 09:30 (which just touches it)."""
    clinic = ClinicFactory()
    doctor = make_doctor(clinic=clinic, mfa=False)
    _hours(doctor, clinic, (time(9), time(9, 30), 30), (time(9, 20), time(9, 40), 20), (time(9, 30), time(9, 50), 20))
    return doctor, clinic


def test_it_books_one_of_two_overlapping_times_of_different_lengths(overlapping_hours: tuple[User, Clinic]) -> None:
    doctor, clinic = overlapping_hours
    first, second = _patients(2)
    for day in range(ROUNDS):
        outcomes = _race(
            [partial(book, first, doctor, clinic, _at(day, 9)), partial(book, second, doctor, clinic, _at(day, 9, 20))]
        )
        assert sorted(outcomes) == ["booked", "slot_taken"], (connection.vendor, day, outcomes)
        [held] = _holding(doctor=doctor, day=day)
        winner, start = (first, _at(day, 9)) if outcomes[0] == "booked" else (second, _at(day, 9, 20))
        assert (held.patient, held.starts_at) == (winner, start)
    assert len(_holding(doctor=doctor)) == ROUNDS


def test_it_books_both_of_two_adjacent_times(overlapping_hours: tuple[User, Clinic]) -> None:
    doctor, clinic = overlapping_hours
    first, second = _patients(2)
    for day in range(ROUNDS):
        outcomes = _race(
            [partial(book, first, doctor, clinic, _at(day, 9)), partial(book, second, doctor, clinic, _at(day, 9, 30))]
        )
        assert outcomes == ["booked", "booked"], (connection.vendor, day, outcomes)
    assert len(_holding(patient=first)) == len(_holding(patient=second)) == ROUNDS


def test_a_move_racing_a_booking_for_the_same_time_leaves_exactly_one_holder() -> None:
    clinic = ClinicFactory()
    doctor = make_doctor(clinic=clinic, mfa=False)
    _hours(doctor, clinic, (time(9), time(12), 30))
    mover, booker, later = _patients(3)
    for day in range(ROUNDS):
        original = book(mover, doctor, clinic, _at(day, 9))
        before = Appointment.objects.filter(pk=original.pk).values().get()
        target = _at(day, 10)
        move = partial(appointment_reschedule, appointment=original, starts_at=target, by=mover, now=NOW)
        outcomes = _race([move, partial(book, booker, doctor, clinic, target)])
        assert sorted(outcomes) == ["booked", "slot_taken"], (connection.vendor, day, outcomes)
        [holder] = _holding(doctor=doctor, starts_at=target)
        if outcomes[0] == "booked":
            assert holder.patient == mover
            assert holder.rescheduled_from_id == original.pk
            assert _holding(patient=mover, day=day) == [holder]
            original.refresh_from_db()
            assert original.status == AppointmentStatus.CANCELLED
            # The old time is free again.
            assert book(later, doctor, clinic, _at(day, 9)).starts_at == _at(day, 9)
        else:
            assert holder.patient == booker
            assert Appointment.objects.filter(pk=original.pk).values().get() == before
            assert _holding(patient=mover, day=day) == [original]


def test_one_patient_booking_two_doctors_at_overlapping_times_gets_one() -> None:
    hillside, riverside = ClinicFactory(), ClinicFactory()
    first_doctor = make_doctor(clinic=hillside, mfa=False)
    second_doctor = make_doctor(clinic=riverside, mfa=False)
    _hours(first_doctor, hillside, (time(9), time(9, 30), 30))
    _hours(second_doctor, riverside, (time(9, 20), time(9, 40), 20))
    [patient] = _patients(1)
    for day in range(ROUNDS):
        outcomes = _race(
            [
                partial(book, patient, first_doctor, hillside, _at(day, 9)),
                partial(book, patient, second_doctor, riverside, _at(day, 9, 20)),
            ]
        )
        assert sorted(outcomes) == ["booked", "patient_busy"], (connection.vendor, day, outcomes)
        [held] = _holding(patient=patient, day=day)
        assert held.doctor == (first_doctor if outcomes[0] == "booked" else second_doctor)
    assert len(_holding(patient=patient)) == ROUNDS
