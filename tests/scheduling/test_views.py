from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.clinics.models import Clinic
from apps.scheduling.models import Appointment
from tests.scheduling.conftest import NOW, TOMORROW_9, book

Login = Callable[[User], Client]
pytestmark = pytest.mark.usefixtures("hours")


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def _book_url(bob: User, clinic: Clinic) -> str:
    return reverse("scheduling:book", args=[bob.pk, clinic.pk])


def test_a_patient_finds_the_earliest_doctor_and_books(login: Login, alice: User, bob: User, clinic: Clinic) -> None:
    client = login(alice)
    found = client.get(reverse("scheduling:find")).content.decode()
    assert "Bob" in found
    assert "2026-12-01 09:00" in found  # today's first slot: exactly the clinic's hour of notice away
    week = client.get(reverse("scheduling:doctor_week", args=[bob.pk, clinic.pk])).content.decode()
    assert "09:00" in week
    form = client.get(_book_url(bob, clinic), {"starts_at": TOMORROW_9.isoformat()})
    assert form.status_code == 200
    response = client.post(
        _book_url(bob, clinic), {"starts_at": TOMORROW_9.isoformat(), "mode": "video", "reason": "Dizzy"}
    )
    assert response["Location"] == reverse("scheduling:mine")
    appointment = Appointment.objects.get(patient=alice)
    assert appointment.reason == "Dizzy"
    mine = client.get(reverse("scheduling:mine")).content.decode()
    assert "2026-12-02 09:00" in mine


def test_the_times_show_in_the_patients_zone(login: Login, alice: User, bob: User, clinic: Clinic) -> None:
    User.objects.filter(pk=alice.pk).update(timezone="Europe/London")
    week = login(alice).get(reverse("scheduling:doctor_week", args=[bob.pk, clinic.pk])).content.decode()
    assert "01:00" in week  # 09:00 in Shanghai
    assert "Europe/London" in week


def test_it_says_when_the_slot_was_just_taken(
    login: Login, alice: User, bob: User, clinic: Clinic, mallory: User
) -> None:
    from apps.accounts.services import consent_give

    consent_give(patient=mallory, given_by=mallory)
    book(mallory, bob, clinic)
    response = login(alice).post(_book_url(bob, clinic), {"starts_at": TOMORROW_9.isoformat(), "mode": "video"})
    assert response.status_code == 302
    assert response["Location"] == reverse("scheduling:doctor_week", args=[bob.pk, clinic.pk])
    assert Appointment.objects.count() == 1


@pytest.mark.parametrize(
    "starts_at", ["", "tomorrow", "2026-13-02T09:00:00+08:00", (TOMORROW_9 + timedelta(minutes=7)).isoformat()]
)
def test_it_refuses_a_bad_time_and_books_nothing(
    login: Login, alice: User, bob: User, clinic: Clinic, starts_at: str
) -> None:
    response = login(alice).post(_book_url(bob, clinic), {"starts_at": starts_at, "mode": "video"})
    assert response.status_code == 302
    assert not Appointment.objects.exists()


def test_it_refuses_an_unknown_mode(login: Login, alice: User, bob: User, clinic: Clinic) -> None:
    response = login(alice).post(_book_url(bob, clinic), {"starts_at": TOMORROW_9.isoformat(), "mode": "in_person"})
    assert response.status_code == 200
    assert not Appointment.objects.exists()


def test_booking_needs_consent(login: Login, mallory: User, bob: User, clinic: Clinic) -> None:
    response = login(mallory).post(_book_url(bob, clinic), {"starts_at": TOMORROW_9.isoformat(), "mode": "video"})
    assert response["Location"] == reverse("accounts:consent")
    assert not Appointment.objects.exists()


def test_the_patient_cancels_moves_and_downloads_the_calendar_file(
    login: Login, alice: User, bob: User, clinic: Clinic
) -> None:
    appointment = book(alice, bob, clinic)
    client = login(alice)
    ics = client.get(reverse("scheduling:calendar", args=[appointment.pk]))
    assert ics["Content-Type"].startswith("text/calendar")
    assert b"BEGIN:VEVENT" in ics.content
    assert AuditEvent.objects.filter(action="export", object_type="appointment", patient=alice).exists()
    client.post(
        reverse("scheduling:reschedule", args=[appointment.pk]),
        {"starts_at": (TOMORROW_9 + timedelta(hours=1)).isoformat()},
    )
    moved = Appointment.objects.get(patient=alice, status="booked")
    assert moved.starts_at == TOMORROW_9 + timedelta(hours=1)
    client.post(reverse("scheduling:cancel", args=[moved.pk]))
    assert not Appointment.objects.filter(status="booked").exists()


def test_mallory_cannot_touch_alices_appointment(
    login: Login, alice: User, bob: User, clinic: Clinic, mallory: User
) -> None:
    appointment = book(alice, bob, clinic)
    client = login(mallory)
    assert client.get(reverse("scheduling:calendar", args=[appointment.pk])).status_code == 404
    assert client.post(reverse("scheduling:cancel", args=[appointment.pk])).status_code == 404
    assert (
        client.post(
            reverse("scheduling:reschedule", args=[appointment.pk]),
            {"starts_at": (TOMORROW_9 + timedelta(hours=1)).isoformat()},
        ).status_code
        == 404
    )
    appointment.refresh_from_db()
    assert appointment.status == "booked"
    assert appointment.starts_at == TOMORROW_9


@pytest.mark.parametrize("name", ["scheduling:mine", "scheduling:find"])
def test_the_patient_pages_refuse_staff_and_visitors(login: Login, client: Client, bob: User, name: str) -> None:
    assert client.get(reverse(name))["Location"].startswith(reverse("account_login"))
    assert login(bob).get(reverse(name)).status_code == 404


def test_the_calendar_file_refuses_visitors(client: Client, alice: User, bob: User, clinic: Clinic) -> None:
    appointment = book(alice, bob, clinic)
    assert client.get(reverse("scheduling:calendar", args=[appointment.pk])).status_code == 404


def test_an_unknown_doctor_or_clinic_is_not_found(
    login: Login, alice: User, bob: User, clinic: Clinic, carol: User
) -> None:
    client = login(alice)
    assert client.get(reverse("scheduling:doctor_week", args=[carol.pk, clinic.pk])).status_code == 404
    assert client.get(reverse("scheduling:doctor_week", args=[bob.pk, 999999])).status_code == 404


def test_the_search_filters_by_specialty_clinic_and_language(
    login: Login, alice: User, bob: User, clinic: Clinic
) -> None:
    from apps.clinics.models import DoctorProfile, Specialty
    from tests.factories import ClinicFactory

    client = login(alice)
    general = Specialty.objects.get(code="general-practice")
    cardiology = Specialty.objects.create(code="cardiology", name_en="Cardiology", name_zh_hans="心血管内科")
    assert "Bob" in client.get(reverse("scheduling:find"), {"specialty": general.pk}).content.decode()
    assert "Bob" not in client.get(reverse("scheduling:find"), {"specialty": cardiology.pk}).content.decode()
    assert "Bob" not in client.get(reverse("scheduling:find"), {"clinic": ClinicFactory().pk}).content.decode()
    DoctorProfile.objects.filter(user=bob).update(languages=["zh-hans"])
    assert "Bob" not in client.get(reverse("scheduling:find"), {"language": "en"}).content.decode()
    assert "Bob" in client.get(reverse("scheduling:find"), {"language": "zh-hans"}).content.decode()
