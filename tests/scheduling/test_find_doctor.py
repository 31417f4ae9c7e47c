"""The patient's "find a doctor" page: every doctor of the network at each
clinic they practise at, earliest free time first, for a constant number of
queries."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.accounts.models import User
from apps.accounts.services import consent_give
from apps.clinics.models import Clinic, Membership, Role
from apps.scheduling.models import AvailabilityRule, TimeOff
from apps.scheduling.selectors import doctors_earliest_slots, doctors_free_slots
from tests.factories import ClinicFactory, PatientFactory, make_doctor
from tests.scheduling.conftest import NOW, SHANGHAI, TOMORROW_9, book

Login = Callable[[User], Client]
pytestmark = pytest.mark.usefixtures("hours")
TODAY_9 = datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def _doctor(
    clinic: Clinic, name: str, *, start: time | None = time(9), end: time = time(12), minutes: int = 30
) -> User:
    doctor = make_doctor(clinic=clinic, full_name=name, mfa=False)
    if start is not None:
        AvailabilityRule.objects.create(
            doctor=doctor,
            clinic=clinic,
            weekdays=[0, 1, 2, 3, 4],
            start_time=start,
            end_time=end,
            slot_minutes=minutes,
            modes=["video"],
        )
    return doctor


def _found(client: Client, **query: object) -> list[tuple[str, str, datetime | None]]:
    response = client.get(reverse("scheduling:find"), query)
    assert response.status_code == 200
    return [
        (r.profile.user.full_name, r.clinic.name, r.earliest.start if r.earliest else None)
        for r in response.context["results"]
    ]


def test_it_lists_doctors_earliest_first_and_those_without_free_time_last(
    login: Login, alice: User, bob: User, clinic: Clinic
) -> None:
    book(alice, bob, clinic, starts_at=TODAY_9)  # Bob's first slot is taken
    dana = _doctor(clinic, "Dana", end=time(10), minutes=20)
    TimeOff.objects.create(doctor=dana, starts_at=TODAY_9, ends_at=TODAY_9 + timedelta(minutes=20), created_by=dana)
    london = ClinicFactory(name="Thames Clinic", timezone="Europe/London")
    _doctor(london, "Erin")
    _doctor(clinic, "Aaron", start=None)  # no weekly hours

    found = _found(login(alice))

    # Bob's appointment at 09:00-09:30 does not block Dana's 09:20 (it's his time, not hers).
    assert found == [
        ("Dana", "Hillside Clinic", TODAY_9 + timedelta(minutes=20)),
        ("Bob", "Hillside Clinic", TODAY_9 + timedelta(minutes=30)),
        ("Erin", "Thames Clinic", datetime(2026, 12, 1, 17, 0, tzinfo=SHANGHAI)),  # 09:00 in London
        ("Aaron", "Hillside Clinic", None),
    ]
    page = login(alice).get(reverse("scheduling:find")).content.decode()
    assert "No free time in the next two weeks." in page


def test_it_finds_a_doctors_first_free_time_later_in_the_fortnight(
    login: Login, alice: User, bob: User, clinic: Clinic
) -> None:
    saturdays = _doctor(clinic, "Sam", start=None)
    AvailabilityRule.objects.create(
        doctor=saturdays, clinic=clinic, weekdays=[5], start_time=time(10), end_time=time(11), modes=["video"]
    )
    from_next_week = _doctor(clinic, "Nina", start=None)
    AvailabilityRule.objects.create(
        doctor=from_next_week,
        clinic=clinic,
        weekdays=[0, 1, 2, 3, 4],
        start_time=time(9),
        end_time=time(10),
        modes=["video"],
        valid_from=TODAY_9.date() + timedelta(days=8),
    )
    assert _found(login(alice)) == [
        ("Bob", "Hillside Clinic", TODAY_9),
        ("Sam", "Hillside Clinic", TODAY_9 + timedelta(days=4, hours=1)),  # Saturday 10:00
        ("Nina", "Hillside Clinic", TODAY_9 + timedelta(days=8)),
    ]


def test_the_earliest_slot_is_the_first_of_the_free_slots(alice: User, bob: User, clinic: Clinic) -> None:
    book(alice, bob, clinic, starts_at=TODAY_9)
    london = ClinicFactory(timezone="Europe/London")
    erin = _doctor(london, "Erin", start=time(16), end=time(17))
    sam = _doctor(clinic, "Sam", start=None)
    AvailabilityRule.objects.create(
        doctor=sam, clinic=clinic, weekdays=[5], start_time=time(10), end_time=time(11), modes=["video"]
    )
    pairs = [(bob.pk, clinic), (erin.pk, london), (sam.pk, clinic)]
    for days in (1, 2, 3, 5, 14):
        free = doctors_free_slots(pairs=pairs, days=days, now=NOW)
        earliest = doctors_earliest_slots(pairs=pairs, days=days, now=NOW)
        assert earliest == {key: slots[0] if slots else None for key, slots in free.items()}


def test_doctors_with_the_same_earliest_time_are_listed_by_name(login: Login, alice: User, clinic: Clinic) -> None:
    _doctor(clinic, "Zoe")
    _doctor(clinic, "Adam")
    assert [name for name, _, _ in _found(login(alice))] == ["Adam", "Bob", "Zoe"]


def test_a_doctor_appears_once_per_active_clinic_they_practise_at(
    login: Login, alice: User, bob: User, clinic: Clinic
) -> None:
    second = ClinicFactory(name="Riverside Clinic")
    Membership.objects.create(user=bob, clinic=second, role=Role.DOCTOR)
    AvailabilityRule.objects.create(
        doctor=bob, clinic=second, weekdays=[1], start_time=time(14), end_time=time(15), modes=["phone"]
    )
    left = ClinicFactory(name="Former Clinic")
    Membership.objects.create(user=bob, clinic=left, role=Role.DOCTOR, is_active=False)
    closed = ClinicFactory(name="Closed Clinic", is_active=False)
    Membership.objects.create(user=bob, clinic=closed, role=Role.DOCTOR)
    Membership.objects.create(user=bob, clinic=ClinicFactory(name="Admin Clinic"), role=Role.ADMIN)

    assert _found(login(alice)) == [
        ("Bob", "Hillside Clinic", TODAY_9),
        ("Bob", "Riverside Clinic", TODAY_9 + timedelta(hours=5)),
    ]
    assert _found(login(alice), clinic=second.pk) == [("Bob", "Riverside Clinic", TODAY_9 + timedelta(hours=5))]


def _busy_network(count: int, clinics: list[Clinic]) -> None:
    """``count`` more doctors spread over ``clinics``, each with a booked
    appointment tomorrow and an afternoon off."""
    for index in range(count):
        clinic = clinics[index % len(clinics)]
        doctor = _doctor(clinic, f"Doctor {index}")
        patient = PatientFactory(full_name=f"Patient {index}")
        consent_give(patient=patient, given_by=patient)
        tomorrow_9 = datetime.combine(TOMORROW_9.date(), time(9), tzinfo=ZoneInfo(clinic.timezone))
        book(patient, doctor, clinic, starts_at=tomorrow_9)
        TimeOff.objects.create(
            doctor=doctor,
            starts_at=tomorrow_9 + timedelta(hours=1),
            ends_at=tomorrow_9 + timedelta(hours=8),
            created_by=doctor,
        )


def test_the_page_costs_the_same_queries_for_more_doctors_and_appointments(
    login: Login, alice: User, bob: User, clinic: Clinic
) -> None:
    client = login(alice)
    _busy_network(1, [clinic])
    client.get(reverse("scheduling:find"))
    with CaptureQueriesContext(connection) as few:
        assert len(_found(client)) == 2

    clinics = [clinic, ClinicFactory(), ClinicFactory(timezone="Europe/London")]
    _busy_network(4, clinics)
    for slot in range(6):  # more of Bob's and Alice's appointments: all of Thursday
        book(alice, bob, clinic, starts_at=TOMORROW_9 + timedelta(days=1, minutes=30 * slot))
    with CaptureQueriesContext(connection) as more:
        assert len(_found(client)) == 6

    assert len(more) == len(few), [query["sql"] for query in more.captured_queries]


def test_a_bad_filter_shows_an_error_and_every_doctor(login: Login, alice: User, bob: User) -> None:
    response = login(alice).get(reverse("scheduling:find"), {"clinic": "not-a-clinic", "language": "xx"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert [r.profile.user for r in response.context["results"]] == [bob]


def test_clinic_staff_and_visitors_are_refused(client: Client, login: Login, carol: User) -> None:
    assert client.get(reverse("scheduling:find"))["Location"].startswith(reverse("account_login"))
    assert login(carol).get(reverse("scheduling:find")).status_code == 404
