"""One appointment's page, its short link, and what staff do from it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.clinics.models import Clinic
from apps.notifications.models import Notification
from apps.scheduling.models import Appointment, AppointmentStatus
from tests.conftest import sms_sent
from tests.factories import ClinicFactory, make_clinic_admin
from tests.scheduling.conftest import NOW, TOMORROW_9, book

Login = Callable[[User], Client]
pytestmark = [pytest.mark.usefixtures("hours"), pytest.mark.sqlite]


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def appointment(alice: User, bob: User, clinic: Clinic) -> Appointment:
    return book(alice, bob, clinic)


def _detail(appointment: Appointment) -> str:
    return reverse("scheduling:detail", args=[appointment.pk])


def test_the_short_link_leads_to_the_appointment_after_sign_in(
    client: Client, login: Login, alice: User, appointment: Appointment
) -> None:
    short = f"/a/{appointment.pk}/"
    assert reverse("appointment_short", args=[appointment.pk]) == short
    anonymous = client.get(short, follow=True)
    assert anonymous.redirect_chain[-1][0].startswith(reverse("account_login"))
    page = login(alice).get(short, follow=True)
    assert page.redirect_chain[-1][0] == _detail(appointment)
    assert "Bob" in page.content.decode()


def test_the_booking_sms_carries_the_short_link(
    alice: User, bob: User, clinic: Clinic, deliver: Callable[[], Any]
) -> None:
    with deliver():
        appointment = book(alice, bob, clinic)
    (sms,) = sms_sent(to=alice.phone)
    assert sms.body.endswith(f"http://127.0.0.1:8000/a/{appointment.pk}/")


def test_the_patient_sees_their_appointment_in_their_own_zone(
    login: Login, alice: User, appointment: Appointment
) -> None:
    User.objects.filter(pk=alice.pk).update(timezone="Europe/London")
    page = login(alice).get(_detail(appointment)).content.decode()
    assert "01:00–01:30" in page  # 09:00 in Shanghai
    assert "Cough" in page
    assert reverse("scheduling:staff_cancel", args=[appointment.pk]) not in page


def test_the_clinic_admin_sees_it_in_clinic_time_with_staff_actions(
    login: Login, carol: User, appointment: Appointment
) -> None:
    page = login(carol).get(_detail(appointment)).content.decode()
    assert "09:00–09:30" in page
    assert "Alice" in page
    assert reverse("scheduling:staff_cancel", args=[appointment.pk]) in page
    assert AuditEvent.objects.filter(actor=carol, action="view", object_type="appointment").exists()


@pytest.mark.parametrize("who", ["mallory", "stranger_admin"])
def test_people_without_a_right_cannot_see_it(
    login: Login, who: str, request: pytest.FixtureRequest, appointment: Appointment
) -> None:
    user = make_clinic_admin(clinic=ClinicFactory()) if who == "stranger_admin" else request.getfixturevalue(who)
    assert login(user).get(_detail(appointment)).status_code == 404


def test_the_clinic_admin_cancels_after_the_cutoff_with_a_reason(
    login: Login, carol: User, appointment: Appointment
) -> None:
    url = reverse("scheduling:staff_cancel", args=[appointment.pk])
    with time_machine.travel(TOMORROW_9 - timedelta(hours=2), tick=False):
        client = login(carol)  # staff sessions last 12 h at most
        refused = client.post(url, {"reason": ""}, follow=True).content.decode()
        appointment.refresh_from_db()
        assert appointment.status == AppointmentStatus.BOOKED
        assert "must give a reason" in refused, refused[refused.find("<main") :][:1500]
        client.post(url, {"reason": "Doctor called away"})
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CANCELLED
    assert appointment.cancelled_by == carol
    assert appointment.cancel_reason == "Doctor called away"
    assert Notification.objects.filter(template="appointment/cancelled", recipient=appointment.patient).exists()


@pytest.mark.parametrize("who", ["mallory", "alice", "bob", "stranger_admin"])
def test_only_the_clinics_admin_can_cancel_or_move_for_the_patient(
    login: Login, who: str, request: pytest.FixtureRequest, appointment: Appointment
) -> None:
    user = make_clinic_admin(clinic=ClinicFactory()) if who == "stranger_admin" else request.getfixturevalue(who)
    client = login(user)
    cancel = client.post(reverse("scheduling:staff_cancel", args=[appointment.pk]), {"reason": "x"})
    move = client.post(
        reverse("scheduling:staff_reschedule", args=[appointment.pk]),
        {"starts_at": (TOMORROW_9 + timedelta(hours=1)).isoformat()},
    )
    assert (cancel.status_code, move.status_code) == (404, 404)
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.BOOKED
    assert appointment.starts_at == TOMORROW_9


def test_the_clinic_admin_moves_it_to_a_free_time_of_the_day_shown(
    login: Login, carol: User, appointment: Appointment
) -> None:
    client = login(carol)
    page = client.get(_detail(appointment), {"move_day": "2026-12-02"}).content.decode()
    ten = TOMORROW_9 + timedelta(hours=1)
    assert f'value="{ten.isoformat()}"' in page
    assert f'value="{TOMORROW_9.isoformat()}"' not in page  # its own time is taken
    response = client.post(
        reverse("scheduling:staff_reschedule", args=[appointment.pk]),
        {"starts_at": ten.isoformat(), "reason": "Doctor is late"},
    )
    moved = Appointment.objects.get(rescheduled_from=appointment)
    assert response.url == _detail(moved)  # type: ignore[attr-defined]
    assert moved.starts_at == ten
    assert moved.booked_by == carol
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CANCELLED


def test_a_move_to_a_taken_or_invalid_time_changes_nothing(login: Login, carol: User, appointment: Appointment) -> None:
    client = login(carol)
    url = reverse("scheduling:staff_reschedule", args=[appointment.pk])
    for starts_at in ["not a time", (TOMORROW_9 + timedelta(minutes=10)).isoformat(), ""]:
        response = client.post(url, {"starts_at": starts_at}, follow=True)
        assert response.status_code == 200
    assert Appointment.objects.count() == 1
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.BOOKED


def test_the_doctor_marks_a_started_appointment_completed(login: Login, bob: User, appointment: Appointment) -> None:
    client = login(bob)
    url = reverse("scheduling:mark", args=[appointment.pk])
    early = client.post(url, {"status": "completed"}, follow=True).content.decode()
    assert "once its time has come" in early
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.BOOKED
    with time_machine.travel(TOMORROW_9 + timedelta(minutes=40), tick=False):
        client = login(bob)
        page = client.get(_detail(appointment)).content.decode()
        assert 'value="no_show"' in page
        client.post(url, {"status": "completed"})
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.COMPLETED


def test_the_clinic_admin_marks_a_no_show_and_a_bad_status_is_refused(
    login: Login, carol: User, appointment: Appointment
) -> None:
    url = reverse("scheduling:mark", args=[appointment.pk])
    with time_machine.travel(TOMORROW_9 + timedelta(minutes=40), tick=False):
        client = login(carol)
        client.post(url, {"status": "cancelled"})
        appointment.refresh_from_db()
        assert appointment.status == AppointmentStatus.BOOKED
        client.post(url, {"status": "no_show"})
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.NO_SHOW


@pytest.mark.parametrize("who", ["mallory", "alice", "stranger_admin"])
def test_patients_and_strangers_cannot_mark(
    login: Login, who: str, request: pytest.FixtureRequest, appointment: Appointment
) -> None:
    user = make_clinic_admin(clinic=ClinicFactory()) if who == "stranger_admin" else request.getfixturevalue(who)
    with time_machine.travel(TOMORROW_9 + timedelta(minutes=40), tick=False):
        response = login(user).post(reverse("scheduling:mark", args=[appointment.pk]), {"status": "no_show"})
    assert response.status_code == 404
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.BOOKED


def test_the_clinic_calendar_links_each_appointment_to_its_page(
    login: Login, carol: User, clinic: Clinic, appointment: Appointment
) -> None:
    page = (
        login(carol)
        .get(reverse("scheduling:clinic_calendar", args=[clinic.pk]), {"day": "2026-12-02", "span": "day"})
        .content.decode()
    )
    assert _detail(appointment) in page
