"""The consult room page: who may open it, and what it says outside the
join window."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.clinics.models import Clinic
from apps.consults.services import consult_end, consult_open_for, consult_start
from apps.scheduling.models import Appointment, AppointmentStatus
from apps.scheduling.services import appointment_cancel
from tests.consults.conftest import CLOSES, IN_WINDOW, OPENS
from tests.factories import ClinicFactory, make_clinic_admin, make_doctor
from tests.scheduling.conftest import TOMORROW_9, book

Login = Callable[[User], Client]
pytestmark = pytest.mark.sqlite


@pytest.fixture(autouse=True)
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(IN_WINDOW, tick=False) as traveller:
        yield traveller


def _room(appointment: Appointment) -> str:
    return reverse("consults:room", args=[appointment.pk])


def test_it_gives_the_patient_the_room_with_the_socket_and_her_role(
    login: Login, alice: User, appointment: Appointment
) -> None:
    response = login(alice).get(_room(appointment))
    assert response.status_code == 200
    page = response.content.decode()
    assert f'data-socket="/ws/consults/{appointment.pk}/"' in page
    assert 'data-role="patient"' in page
    assert "js/consult-room.js" in page
    assert "Consult with Dr Bob" in page
    assert f'href="/consults/{appointment.pk}/check/" data-check-link' in page  # the pre-call check
    assert "<script>" not in page  # no inline script: the CSP forbids it


def test_it_gives_the_doctor_the_room_with_start_and_end(login: Login, bob: User, appointment: Appointment) -> None:
    response = login(bob).get(_room(appointment))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-role="doctor"' in page
    assert 'data-action="start"' in page
    assert 'data-action="end"' in page
    assert "Consult with Alice" in page
    assert "data-check-link" not in page  # the doctor's check is optional: not offered in the room


def test_the_patient_has_no_start_or_end_button(login: Login, alice: User, appointment: Appointment) -> None:
    page = login(alice).get(_room(appointment)).content.decode()
    assert 'data-action="start"' not in page
    assert 'data-action="end"' not in page


def test_it_sends_anonymous_visitors_to_sign_in(client: Client, appointment: Appointment) -> None:
    response = client.get(_room(appointment))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_it_hides_the_room_from_mallory(login: Login, mallory: User, appointment: Appointment) -> None:
    assert login(mallory).get(_room(appointment)).status_code == 404


def test_it_hides_the_room_from_the_clinics_own_admin(login: Login, carol: User, appointment: Appointment) -> None:
    """Clinic admins run schedules; the consult is the patient's and the doctor's."""
    assert login(carol).get(_room(appointment)).status_code == 404


def test_it_hides_the_room_from_another_clinics_admin_and_doctor(login: Login, appointment: Appointment) -> None:
    other = ClinicFactory(name="Riverside Clinic")
    assert login(make_clinic_admin(clinic=other, full_name="Oscar")).get(_room(appointment)).status_code == 404
    assert login(make_doctor(clinic=other, full_name="Olga")).get(_room(appointment)).status_code == 404


def test_it_has_no_room_for_a_cancelled_appointment(
    login: Login, alice: User, bob: User, appointment: Appointment
) -> None:
    appointment_cancel(appointment=appointment, by=alice, reason="", now=OPENS - timedelta(days=1))
    assert login(alice).get(_room(appointment)).status_code == 404
    assert login(bob).get(_room(appointment)).status_code == 404


def test_it_has_no_room_for_a_phone_appointment(
    login: Login, alice: User, bob: User, clinic: Clinic, hours: object
) -> None:
    phone = book(alice, bob, clinic, TOMORROW_9 + timedelta(hours=1), mode="phone")
    assert login(alice).get(_room(phone)).status_code == 404


def test_it_has_no_room_for_an_unknown_appointment(login: Login, alice: User) -> None:
    assert login(alice).get(reverse("consults:room", args=[987654])).status_code == 404


def test_too_early_it_says_when_the_room_opens_in_the_viewers_zone(
    login: Login, alice: User, appointment: Appointment, clock: time_machine.Traveller
) -> None:
    User.objects.filter(pk=alice.pk).update(timezone="Europe/London")
    clock.move_to(OPENS - timedelta(minutes=1))
    page = login(alice).get(_room(appointment)).content.decode()
    assert "The consult room is not open yet." in page
    assert "You can join from Wednesday 2026-12-02 00:45 (GMT)." in page  # 08:45 in Shanghai
    assert f'href="/consults/{appointment.pk}/check/" data-check-link' in page  # something to do meanwhile
    assert "data-consult-room" not in page
    assert "js/consult-room.js" not in page


def test_after_the_window_it_says_the_room_has_closed(
    login: Login, bob: User, appointment: Appointment, clock: time_machine.Traveller
) -> None:
    clock.move_to(CLOSES)
    page = login(bob).get(_room(appointment)).content.decode()
    assert "The consult room has closed." in page
    assert "data-consult-room" not in page


def test_a_consult_in_progress_stays_open_after_the_window(
    login: Login, bob: User, appointment: Appointment, clock: time_machine.Traveller
) -> None:
    consult_start(consult=consult_open_for(appointment=appointment), by=bob)
    clock.move_to(CLOSES + timedelta(minutes=5))
    page = login(bob).get(_room(appointment)).content.decode()
    assert "data-consult-room" in page


def test_an_ended_consult_says_so(login: Login, alice: User, bob: User, appointment: Appointment) -> None:
    consult = consult_open_for(appointment=appointment)
    consult_start(consult=consult, by=bob)
    consult_end(consult=consult, by=bob)
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.COMPLETED
    page = login(alice).get(_room(appointment)).content.decode()
    assert "This consult has ended." in page
    assert "data-consult-room" not in page
