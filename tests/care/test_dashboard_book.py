"""Booking a consult or follow-up for a patient from the triage queue: the
doctor's free times today (the soonest first) or on a later day, one click
books it through scheduling's rules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import time, timedelta

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.clinics.models import Clinic
from apps.scheduling.models import Appointment, AvailabilityRule
from tests.care.dashboard_data import NOW, appointment

Login = Callable[[User], Client]
pytestmark = pytest.mark.time_machine(NOW, tick=False)  # dashboard_data's "now"


@pytest.fixture
def booked(alice: User, bob: User, clinic: Clinic) -> None:
    appointment(patient=alice, doctor=bob, clinic=clinic, starts_at=NOW - timedelta(days=30))
    AvailabilityRule.objects.create(
        doctor=bob,
        clinic=clinic,
        weekdays=[0, 1, 2, 3, 4],
        start_time=time(9),
        end_time=time(12),
        slot_minutes=30,
        modes=["video", "phone"],
    )


def _url(patient: User) -> str:
    return reverse("care:patient_book", args=[patient.pk])


def test_it_offers_todays_free_times_first(login: Login, alice: User, bob: User, booked: None) -> None:
    page = login(bob).get(_url(alice)).content.decode()
    # 09:00 is now and 09:30 within the clinic's hour of notice.
    assert ">10:00<" in page
    assert ">11:30<" in page
    assert ">09:30<" not in page
    assert "2026-12-01" in page


def test_one_click_books_it_and_tells_the_patient(login: Login, alice: User, bob: User, booked: None) -> None:
    client = login(bob)
    response = client.post(
        _url(alice),
        {"clinic": bob.memberships.get().clinic_id, "starts_at": "2026-12-01T10:00:00+08:00", "mode": "video"},
    )
    made = Appointment.objects.get(patient=alice, starts_at=NOW + timedelta(hours=1))
    assert response.status_code == 302
    assert response["Location"] == reverse("scheduling:detail", args=[made.pk])
    assert made.doctor == bob
    assert made.booked_by == bob
    assert AuditEvent.objects.filter(object_type="appointment", object_id=str(made.pk), action="create").exists()


def test_a_later_day_offers_that_days_times(login: Login, alice: User, bob: User, booked: None) -> None:
    page = login(bob).get(_url(alice), {"day": "2026-12-08"}).content.decode()
    assert ">09:00<" in page
    assert "2026-12-08" in page


@pytest.mark.parametrize("day", ["2026-13-45", "soon", "2026-11-01"])
def test_a_bad_or_past_day_offers_today(login: Login, alice: User, bob: User, booked: None, day: str) -> None:
    response = login(bob).get(_url(alice), {"day": day})
    page = response.content.decode()
    assert response.status_code == 200
    assert 'name="day" value="2026-12-01"' in page
    assert "Day before" not in page  # nothing before today


def test_a_refused_time_says_why_and_books_nothing(login: Login, alice: User, bob: User, booked: None) -> None:
    clinic_id = bob.memberships.get().clinic_id
    page = (
        login(bob)
        .post(_url(alice), {"clinic": clinic_id, "starts_at": "2026-12-01T09:30:00+08:00", "mode": "video"})
        .content.decode()
    )
    assert "too soon" in page
    bad = login(bob).post(_url(alice), {"clinic": clinic_id, "starts_at": "soon", "mode": "video"})
    assert "Choose a time from the list." in bad.content.decode()
    assert not Appointment.objects.filter(starts_at__gte=NOW).exists()


@pytest.mark.parametrize("who", ["mallory", "carol", "alice", "dave", "erin"])
def test_nobody_else_may_book_from_here(
    login: Login, request: pytest.FixtureRequest, alice: User, booked: None, who: str
) -> None:
    client = login(request.getfixturevalue(who))
    assert client.get(_url(alice)).status_code == 404
    response = client.post(_url(alice), {"starts_at": "2026-12-01T10:00:00+08:00", "mode": "video"})
    assert response.status_code == 404
    assert not Appointment.objects.filter(starts_at__gte=NOW).exists()


def test_a_visitor_is_sent_to_sign_in(client: Client, alice: User, booked: None) -> None:
    assert client.get(_url(alice)).status_code == 302
