"""Many people press "book" at the same moment: one wins, everyone else is
told the slot is taken. Real threads, each with its own database connection."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import time

import pytest
from django.db import connection, connections

from apps.accounts.models import User
from apps.accounts.services import consent_give
from apps.clinics.models import Clinic
from apps.scheduling.models import Appointment, AvailabilityRule
from apps.scheduling.services import BookingError, appointment_book
from tests.factories import ClinicFactory, PatientFactory, make_doctor
from tests.scheduling.conftest import NOW, TOMORROW_9

pytestmark = [pytest.mark.sqlite, pytest.mark.django_db(transaction=True)]

RACERS = 50


def _race(patients: list[User], doctor: User, clinic: Clinic) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(len(patients))

    def attempt(patient: User) -> None:
        try:
            start.wait()
            appointment_book(
                patient=patient,
                doctor=doctor,
                clinic=clinic,
                starts_at=TOMORROW_9,
                mode="video",
                booked_by=patient,
                now=NOW,
            )
            result = "booked"
        except BookingError as refused:
            result = refused.code
        except Exception as exc:  # anything else is a bug the test must show
            result = f"error: {exc.__class__.__name__}: {exc}"
        finally:
            connections.close_all()
        with lock:
            outcomes[result] += 1

    threads = [threading.Thread(target=attempt, args=(p,)) for p in patients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return outcomes


def test_fifty_patients_race_for_one_slot_and_one_wins() -> None:
    clinic = ClinicFactory()
    doctor = make_doctor(clinic=clinic)
    AvailabilityRule.objects.create(
        doctor=doctor,
        clinic=clinic,
        weekdays=[2],
        start_time=time(9),
        end_time=time(10),
        slot_minutes=30,
        modes=["video"],
    )
    patients = []
    for n in range(RACERS):
        patient = PatientFactory(email=f"racer{n}@example.org")
        consent_give(patient=patient, given_by=patient)
        patients.append(patient)
    outcomes = _race(patients, doctor, clinic)
    assert outcomes == Counter({"booked": 1, "slot_taken": RACERS - 1}), (connection.vendor, outcomes)
    assert Appointment.objects.filter(doctor=doctor).count() == 1
