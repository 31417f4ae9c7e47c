from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from apps.accounts.models import Consent, User
from apps.clinics.models import Clinic
from apps.scheduling.models import Appointment
from tests.conftest import sms_sent
from tests.factories import ClinicFactory, make_clinic_admin
from tests.scheduling.conftest import NOW, TOMORROW_9

Login = Callable[[User], Client]
pytestmark = pytest.mark.usefixtures("hours")


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def _form(bob: User, **extra: str) -> dict[str, str]:
    data = {
        "phone": "139 0013 9777",
        "full_name": "Zhao Min",
        "consent": "on",
        "doctor": str(bob.pk),
        "day": "2026-12-02",
    }
    data.update(extra)
    return data


def test_the_admin_registers_a_phone_only_patient_and_books(
    login: Login, carol: User, bob: User, clinic: Clinic, deliver: Any
) -> None:
    client = login(carol)
    url = reverse("scheduling:staff_book", args=[clinic.pk])
    times = client.post(url, _form(bob)).content.decode()
    assert TOMORROW_9.isoformat() in times
    assert not User.objects.filter(phone="+8613900139777").exists()  # nothing written before a time is chosen
    with deliver():
        response = client.post(url, _form(bob, starts_at=TOMORROW_9.isoformat(), mode="phone", reason="Knee pain"))
    assert response["Location"] == reverse("scheduling:clinic_calendar", args=[clinic.pk])
    patient = User.objects.get(phone="+8613900139777")
    assert patient.full_name == "Zhao Min"
    assert not patient.has_usable_password()
    assert Consent.objects.get(patient=patient).given_by == carol
    appointment = Appointment.objects.get(patient=patient)
    assert (appointment.booked_by, appointment.mode, appointment.starts_at) == (carol, "phone", TOMORROW_9)
    assert "booked" in sms_sent("+8613900139777")[-1].body


def test_the_admin_books_for_a_known_patient(login: Login, carol: User, alice: User, bob: User, clinic: Clinic) -> None:
    response = login(carol).post(
        reverse("scheduling:staff_book", args=[clinic.pk]),
        _form(bob, phone=str(alice.phone), full_name="", consent="", starts_at=TOMORROW_9.isoformat(), mode="video"),
    )
    assert response.status_code == 302
    assert Appointment.objects.get().patient == alice


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"full_name": ""}, "enter their full name"),
        ({"consent": ""}, "consent is needed"),
        ({"phone": "12"}, "Enter a valid phone number"),
    ],
)
def test_a_bad_booking_on_behalf_changes_nothing(
    login: Login, carol: User, bob: User, clinic: Clinic, changes: dict[str, str], message: str
) -> None:
    response = login(carol).post(
        reverse("scheduling:staff_book", args=[clinic.pk]), _form(bob, starts_at=TOMORROW_9.isoformat(), **changes)
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not User.objects.filter(full_name="Zhao Min").exists()
    assert not Appointment.objects.exists()


def test_a_doctor_of_another_clinic_cannot_be_chosen(login: Login, carol: User, clinic: Clinic) -> None:
    from tests.factories import make_doctor

    outsider = make_doctor(clinic=ClinicFactory())
    response = login(carol).post(reverse("scheduling:staff_book", args=[clinic.pk]), _form(outsider))
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()


@pytest.mark.parametrize("who", ["mallory", "alice", "bob"])
def test_only_the_clinics_admins_book_on_behalf(
    login: Login, clinic: Clinic, who: str, request: pytest.FixtureRequest
) -> None:
    assert (
        login(request.getfixturevalue(who)).get(reverse("scheduling:staff_book", args=[clinic.pk])).status_code == 404
    )


def test_another_clinics_admin_is_refused(login: Login, bob: User, clinic: Clinic) -> None:
    stranger = make_clinic_admin(clinic=ClinicFactory())
    response = login(stranger).post(reverse("scheduling:staff_book", args=[clinic.pk]), _form(bob))
    assert response.status_code == 404
