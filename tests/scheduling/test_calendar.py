from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.accounts.models import User
from apps.accounts.services import consent_give
from apps.clinics.models import Clinic
from tests.factories import ClinicFactory, PatientFactory, make_clinic_admin
from tests.scheduling.conftest import NOW, TOMORROW_9, book

Login = Callable[[User], Client]
pytestmark = pytest.mark.usefixtures("hours")


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def _patients_booked(n: int, bob: User, clinic: Clinic, *, first_slot: int = 0) -> None:
    for i in range(first_slot, first_slot + n):
        patient = PatientFactory(email=f"cal-{i}@example.org", full_name=f"Patient {i}")
        consent_give(patient=patient, given_by=patient)
        book(patient, bob, clinic, starts_at=TOMORROW_9 + timedelta(minutes=30 * i))


def _calendar(clinic: Clinic) -> str:
    return reverse("scheduling:clinic_calendar", args=[clinic.pk])


def test_the_clinic_admin_sees_the_booking_on_the_calendar(
    login: Login, carol: User, alice: User, bob: User, clinic: Clinic
) -> None:
    book(alice, bob, clinic)
    page = login(carol).get(_calendar(clinic), {"day": "2026-12-02", "span": "day"}).content.decode()
    assert "09:00–09:30" in page  # clinic time
    assert "Alice" in page
    assert "Bob" in page


def test_the_calendar_costs_the_same_queries_for_more_appointments(
    login: Login, carol: User, bob: User, clinic: Clinic
) -> None:
    client = login(carol)
    _patients_booked(2, bob, clinic)
    client.get(_calendar(clinic))
    with CaptureQueriesContext(connection) as few:
        client.get(_calendar(clinic))
    _patients_booked(4, bob, clinic, first_slot=2)
    with CaptureQueriesContext(connection) as more:
        page = client.get(_calendar(clinic)).content.decode()
    assert page.count("Patient ") == 6
    assert len(more) == len(few)


def test_the_doctor_sees_their_own_schedule_in_their_zone(login: Login, alice: User, bob: User, clinic: Clinic) -> None:
    book(alice, bob, clinic)
    User.objects.filter(pk=bob.pk).update(timezone="Europe/London")
    page = login(bob).get(reverse("scheduling:doctor_calendar"), {"day": "2026-12-02", "span": "day"}).content.decode()
    assert "01:00–01:30" in page
    assert "Alice" in page


def test_another_clinics_admin_cannot_see_the_calendar(login: Login, alice: User, bob: User, clinic: Clinic) -> None:
    book(alice, bob, clinic)
    stranger = make_clinic_admin(clinic=ClinicFactory())
    assert login(stranger).get(_calendar(clinic)).status_code == 404


@pytest.mark.parametrize("who", ["mallory", "alice", "bob"])
def test_non_admins_cannot_see_the_clinic_calendar(
    login: Login, clinic: Clinic, who: str, request: pytest.FixtureRequest
) -> None:
    assert login(request.getfixturevalue(who)).get(_calendar(clinic)).status_code == 404


@pytest.mark.parametrize("who", ["mallory", "carol"])
def test_only_doctors_have_a_schedule(login: Login, who: str, request: pytest.FixtureRequest) -> None:
    assert login(request.getfixturevalue(who)).get(reverse("scheduling:doctor_calendar")).status_code == 404


def test_a_bad_day_falls_back_to_today(login: Login, carol: User, clinic: Clinic) -> None:
    assert login(carol).get(_calendar(clinic), {"day": "not-a-day"}).status_code == 200
