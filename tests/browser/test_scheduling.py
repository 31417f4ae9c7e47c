"""Booking through the real UI: a patient on a phone finds the doctor free
soonest and books; a clinic admin books for a new patient who only has a
phone. The clock runs from the next 08:00 in Shanghai, so that the booking
SMS isn't held for anyone's quiet hours (22:00-07:00)."""

from __future__ import annotations

import re
import time as wall_clock
import zoneinfo
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
import time_machine
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.utils import timezone

from apps.accounts.models import Consent, User
from apps.clinics.models import Clinic
from apps.scheduling.models import Appointment, AvailabilityRule
from tests.conftest import sms_code, sms_sent
from tests.factories import PASSWORD, TOTP_SECRET, make_doctor

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


@pytest.fixture(autouse=True)
def _daytime() -> Iterator[None]:
    """From the next 08:00 in Shanghai (19:00 in New York), less than a day
    ahead so that the browser's real clock still accepts the cookies."""
    now = timezone.now().astimezone(SHANGHAI)
    eight = datetime.combine(now.date(), time(8), tzinfo=SHANGHAI)
    with time_machine.travel(eight if eight > now else eight + timedelta(days=1), tick=True):
        yield


def _clinic_today(clinic: Clinic) -> date:
    return timezone.now().astimezone(zoneinfo.ZoneInfo(clinic.timezone)).date()


def _mornings(doctor: User, clinic: Clinic, *, from_day: date) -> None:
    """09:00-12:00 every day from ``from_day``, 30-minute slots."""
    AvailabilityRule.objects.create(
        doctor=doctor,
        clinic=clinic,
        weekdays=list(range(7)),
        start_time=time(9),
        end_time=time(12),
        slot_minutes=30,
        modes=["video", "phone"],
        valid_from=from_day,
    )


def _totp_code() -> str:
    """The current code, not one about to expire (no tolerance is allowed)."""
    if 30 - wall_clock.time() % 30 < 3:
        wall_clock.sleep(3)
    return format_hotp_value(hotp_value(TOTP_SECRET, int(wall_clock.time()) // 30))


def _fits_the_screen(page: Any, width: int = 360) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth") <= width)


def test_a_patient_on_a_phone_books_the_doctor_free_soonest(
    live_server: Any, phone_page: Any, alice: User, clinic: Clinic
) -> None:
    User.objects.filter(pk=alice.pk).update(timezone="America/New_York")
    tomorrow = _clinic_today(clinic) + timedelta(days=1)
    later = make_doctor(clinic=clinic, mfa=False, full_name="Anna Li")  # first by name ...
    soonest = make_doctor(clinic=clinic, mfa=False, full_name="Zhou Wei")  # ... free first
    _mornings(later, clinic, from_day=tomorrow + timedelta(days=2))
    _mornings(soonest, clinic, from_day=tomorrow)
    first_slot = datetime.combine(tomorrow, time(9), tzinfo=zoneinfo.ZoneInfo(clinic.timezone))
    shown = f"{first_slot.astimezone(NEW_YORK):%Y-%m-%d %H:%M}"  # the evening before, in New York

    page = phone_page
    page.goto(live_server.url + "/")
    page.wait_for_url("**/accounts/login/**")
    page.locator("main a[href*='/login/code/']").click()
    page.locator("input[name=phone]").fill("138 0013 8000")
    page.locator("main form button[type=submit]").click()
    page.wait_for_url("**/login/code/confirm/**")
    page.locator("input[name=code]").fill(sms_code(str(alice.phone)))
    page.locator("main form button[type=submit]:not([form])").click()
    page.wait_for_url(live_server.url + "/")

    page.get_by_role("link", name="Book a consult").first.click()
    page.wait_for_url("**/appointments/find/**")
    cards = page.locator("main section.card")
    assert cards.locator("h2").all_inner_texts() == ["Zhou Wei", "Anna Li"]
    assert shown in cards.first.inner_text()
    assert _fits_the_screen(page)

    cards.first.get_by_role("link", name="See times").click()
    page.wait_for_url(re.compile(rf".*/appointments/doctors/{soonest.pk}/clinics/{clinic.pk}/.*"))
    assert "America/New_York" in page.locator("main").inner_text()
    page.locator("main .slot").first.click()

    page.wait_for_url("**/book/**")
    assert shown in page.locator("main").inner_text()
    page.get_by_label("Phone", exact=True).check()
    page.get_by_label("Reason for the visit (optional)").fill("Headaches for a week")
    assert _fits_the_screen(page)
    page.get_by_role("button", name="Book this time").click()

    page.wait_for_url(live_server.url + "/appointments/")
    assert "Your appointment is booked." in page.locator(".messages").inner_text()
    [upcoming] = page.locator("main section.card").all()
    text = upcoming.inner_text()
    assert shown in text
    assert "Zhou Wei" in text
    assert "Phone" in text
    assert "Headaches for a week" in text
    assert _fits_the_screen(page)

    appointment = Appointment.objects.get(patient=alice)
    assert (appointment.doctor, appointment.starts_at, appointment.mode) == (soonest, first_slot, "phone")
    sms = sms_sent(str(alice.phone))[-1]
    assert f"booked {shown} with Zhou Wei" in sms.body


def test_a_clinic_admin_books_for_a_new_phone_only_patient(
    live_server: Any, desktop_page: Any, carol: User, bob: User, clinic: Clinic
) -> None:
    tomorrow = _clinic_today(clinic) + timedelta(days=1)
    _mornings(bob, clinic, from_day=tomorrow)

    page = desktop_page
    page.goto(live_server.url + "/accounts/login/")
    page.locator("input[name=login]").fill(str(carol.email))
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url("**/accounts/2fa/authenticate/**")
    page.locator("input[name=code]").fill(_totp_code())
    page.locator("main form button[type=submit]:not([form])").click()
    page.wait_for_url(live_server.url + "/")

    page.get_by_role("link", name="Book for a patient").click()
    page.wait_for_url(f"**/appointments/clinics/{clinic.pk}/book/")
    page.get_by_label("Patient's mobile phone number").fill("139 0013 9888")
    page.get_by_label("Full name (for a new patient)").fill("Zhao Min")
    page.get_by_label("The patient has agreed to the processing of their health data").check()
    page.get_by_label("Doctor").select_option(label="Bob")
    page.get_by_label("Day").fill(tomorrow.isoformat())
    page.get_by_role("button", name="Show free times").click()

    first_time = page.locator("main button.slot").first
    first_time.wait_for()
    assert first_time.inner_text() == "09:00"  # clinic time
    assert not User.objects.filter(phone="+8613900139888").exists()  # nothing written before a time is chosen
    page.get_by_label("How").select_option("phone")
    page.get_by_label("Reason for the visit (optional)").fill("Knee pain")
    first_time.click()

    page.wait_for_url(f"**/appointments/clinics/{clinic.pk}/calendar/")
    assert "The appointment is booked" in page.locator(".messages").inner_text()
    row = page.locator("main tr", has_text="Zhao Min")
    assert row.locator("td").all_inner_texts() == ["09:00–09:30", "Bob", "Zhao Min", "Phone", "Booked"]

    patient = User.objects.get(phone="+8613900139888")
    assert patient.full_name == "Zhao Min"
    assert hasattr(patient, "patient_profile")
    assert not patient.has_usable_password()
    assert Consent.objects.get(patient=patient).given_by == carol
    appointment = Appointment.objects.get(patient=patient)
    starts_at = datetime.combine(tomorrow, time(9), tzinfo=zoneinfo.ZoneInfo(clinic.timezone))
    assert (appointment.doctor, appointment.booked_by, appointment.starts_at) == (bob, carol, starts_at)
    assert "Telemed: booked" in sms_sent("+8613900139888")[-1].body
