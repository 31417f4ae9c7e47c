"""The ways into a consult room from other pages: "Join the consult" on a
video appointment's page, and the doctor's "Waiting now" on the dashboard."""

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
from apps.consults.models import Consult
from apps.consults.services import consult_check_record, consult_end, consult_join, consult_open_for, consult_start
from apps.scheduling.models import Appointment
from apps.scheduling.services import appointment_cancel
from tests.consults.conftest import CLOSES, IN_WINDOW, OPENS
from tests.factories import PatientFactory, make_doctor
from tests.scheduling.conftest import TOMORROW_9, book

Login = Callable[[User], Client]
pytestmark = pytest.mark.sqlite

JOIN = "Join the consult"


@pytest.fixture(autouse=True)
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(IN_WINDOW, tick=False) as traveller:
        yield traveller


def _detail(appointment: Appointment) -> str:
    return reverse("scheduling:detail", args=[appointment.pk])


def _room(appointment: Appointment) -> str:
    return reverse("consults:room", args=[appointment.pk])


def _listed(page: str) -> str:
    """The server-rendered "Waiting now" list (the page also holds the words
    its script uses, hidden)."""
    start = page.index("data-waiting-list")
    return page[start : page.index("</ul>", start)]


def _no_one_waiting(page: str) -> bool:
    return "data-waiting-empty>" in page and 'data-waiting-list aria-live="polite" hidden' in page


def _arrives(patient: User, appointment: Appointment) -> Consult:
    consult = consult_open_for(appointment=appointment)
    consult_join(consult=consult, user=patient, channel_name=f"test!{patient.pk}")
    return consult


def test_the_patient_and_the_doctor_can_join_from_the_appointment_page(
    login: Login, alice: User, bob: User, appointment: Appointment
) -> None:
    for user in (alice, bob):
        page = login(user).get(_detail(appointment)).content.decode()
        assert JOIN in page
        assert f'href="{_room(appointment)}"' in page
        assert "The room opens at" not in page


def test_before_the_window_it_says_when_the_room_opens(
    login: Login, alice: User, appointment: Appointment, clock: time_machine.Traveller
) -> None:
    User.objects.filter(pk=alice.pk).update(timezone="Europe/London")
    clock.move_to(OPENS - timedelta(days=1))
    page = login(alice).get(_detail(appointment)).content.decode()
    assert JOIN in page
    assert "The room opens at Wednesday 2026-12-02 00:45 (GMT)." in page


def test_the_clinic_admin_has_no_join_button(login: Login, carol: User, appointment: Appointment) -> None:
    page = login(carol).get(_detail(appointment)).content.decode()
    assert "Alice" in page  # her page, without the way into the consult
    assert JOIN not in page


def test_there_is_no_join_button_for_a_phone_appointment(
    login: Login, alice: User, bob: User, clinic: Clinic, hours: object
) -> None:
    phone = book(alice, bob, clinic, TOMORROW_9 + timedelta(hours=1), mode="phone")
    assert JOIN not in login(alice).get(_detail(phone)).content.decode()


def test_there_is_no_join_button_once_cancelled_ended_or_closed(
    login: Login, alice: User, bob: User, clinic: Clinic, hours: object, clock: time_machine.Traveller
) -> None:
    cancelled = book(alice, bob, clinic, TOMORROW_9 + timedelta(hours=1))
    appointment_cancel(appointment=cancelled, by=alice, reason="", now=OPENS - timedelta(days=1))
    ended = book(alice, bob, clinic, TOMORROW_9)
    consult = consult_open_for(appointment=ended)
    consult_start(consult=consult, by=bob)
    consult_end(consult=consult, by=bob)
    client = login(alice)
    assert JOIN not in client.get(_detail(cancelled)).content.decode()
    assert JOIN not in client.get(_detail(ended)).content.decode()

    late = book(alice, bob, clinic, TOMORROW_9 + timedelta(hours=2))
    assert JOIN in client.get(_detail(late)).content.decode()
    clock.move_to(CLOSES + timedelta(hours=2))
    assert JOIN not in client.get(_detail(late)).content.decode()


def test_the_doctor_sees_who_is_waiting_on_the_dashboard(
    login: Login, alice: User, bob: User, appointment: Appointment
) -> None:
    client = login(bob)
    page = client.get("/").content.decode()
    assert "No one is waiting." in page
    assert _no_one_waiting(page)
    consult = _arrives(alice, appointment)
    consult_check_record(
        consult=consult,
        by=alice,
        result={"rtt_ms": 900, "loss_pct": 9, "bitrate_kbps": 80, "relay_ok": None, "recommendation": "audio"},
    )
    page = client.get("/").content.decode()
    assert not _no_one_waiting(page)
    listed = _listed(page)
    assert "Alice" in listed
    assert f'href="{_room(appointment)}"' in listed
    assert "waiting since 08:55" in listed  # Bob's zone: Shanghai
    assert "Check: audio only" in listed
    assert 'data-socket="/ws/consults/waiting/"' in page  # kept live by static/js/waiting-room.js


def test_other_doctors_and_clinic_admins_do_not_see_her_waiting(
    login: Login, alice: User, carol: User, clinic: Clinic, appointment: Appointment
) -> None:
    _arrives(alice, appointment)
    other_doctor = make_doctor(clinic=clinic, full_name="Dana")
    page = login(other_doctor).get("/").content.decode()
    assert "Waiting now" in page
    assert "Alice" not in page
    page = login(carol).get("/").content.decode()
    assert "Waiting now" not in page  # not a doctor
    assert "Alice" not in page


def test_the_waiting_list_costs_the_same_queries_for_more_patients(
    login: Login, alice: User, bob: User, clinic: Clinic, appointment: Appointment
) -> None:
    client = login(bob)
    _arrives(alice, appointment)
    client.get("/")
    with CaptureQueriesContext(connection) as few:
        client.get("/")
    for n, minutes in enumerate((30, 60, 90)):
        patient = PatientFactory(full_name=f"Patient {n}")
        consent_give(patient=patient, given_by=patient)
        _arrives(patient, book(patient, bob, clinic, TOMORROW_9 + timedelta(minutes=minutes)))
    with CaptureQueriesContext(connection) as more:
        page = client.get("/").content.decode()
    assert _listed(page).count("waiting since") == 4
    assert len(more) == len(few)
