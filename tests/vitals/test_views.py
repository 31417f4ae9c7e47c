"""The vitals pages: quick entry, My readings, a patient's readings for
their doctor, one reading with its advice, the staff's patient chooser."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.accounts.models import User
from apps.scheduling.models import Appointment
from apps.vitals.models import Alert, Reading
from tests.vitals.conftest import CRISIS, NOW, record

Login = Callable[[User], Client]
pytestmark = pytest.mark.sqlite

ENTRY = reverse("vitals:entry", args=["blood_pressure"])
MINE = reverse("vitals:mine")


def _bp(**extra: str) -> dict[str, str]:
    data = {"systolic": "128", "diastolic": "82", "pulse": "70", "measured_at": "2026-12-01T07:55", "note": ""}
    data.update(extra)
    return data


def test_the_quick_entry_page_is_made_for_a_phone(login: Login, alice: User) -> None:
    page = login(alice).get(ENTRY).content.decode()
    assert page.count('inputmode="decimal"') == 3
    assert 'value="2026-12-01T08:00"' in page  # now, in Alice's zone
    assert "<script>" not in page and "onclick" not in page
    assert "css/vitals.css" in page


def test_alice_saves_a_reading_and_reads_its_advice(login: Login, alice: User) -> None:
    client = login(alice)
    response = client.post(ENTRY, _bp())
    reading = Reading.objects.get()
    assert response["Location"] == reverse("vitals:reading", args=[reading.pk])
    assert reading.measured_at == NOW - timedelta(minutes=5)
    assert (reading.source, reading.entered_by) == ("manual", alice)
    page = client.get(response["Location"]).content.decode()
    assert "128/82 mmHg" in page and "High-normal" in page
    assert "Less salt" in page


def test_a_crisis_tells_the_patient_what_to_do_now(login: Login, alice: User, appointment: Appointment) -> None:
    client = login(alice)
    response = client.post(ENTRY, _bp(systolic="190", diastolic="110"), follow=True)
    page = response.content.decode()
    assert "Hypertensive crisis" in page
    assert "call 120 or go to the clinic now" in page
    assert "doctors have been alerted" in page


def test_bad_values_are_refused_with_a_clear_message(login: Login, alice: User) -> None:
    client = login(alice)
    page = client.post(ENTRY, _bp(systolic="320")).content.decode()
    assert "Systolic (upper) must be between 50 and 300 mmHg." in page
    page = client.post(ENTRY, _bp(systolic="80", diastolic="90")).content.decode()
    assert "must be higher than the lower" in page
    page = client.post(ENTRY, _bp(measured_at="2026-12-01T09:00")).content.decode()
    assert "cannot be in the future" in page
    assert Reading.objects.count() == 0


def test_the_last_values_are_hints(login: Login, alice: User) -> None:
    record(alice)
    page = login(alice).get(ENTRY).content.decode()
    assert 'placeholder="Last: 128 mmHg"' in page
    assert "128/82 mmHg, pulse 70 beats/min" in page


def test_glucose_in_the_patients_unit(login: Login, alice: User) -> None:
    alice.patient_profile.glucose_unit = "mg/dL"
    alice.patient_profile.save()
    client = login(alice)
    url = reverse("vitals:entry", args=["glucose"])
    assert "Glucose (mg/dL)" in client.get(url).content.decode()
    client.post(url, {"glucose": "126", "unit": "mg/dL", "context": "fasting", "measured_at": "2026-12-01T07:00"})
    assert Reading.objects.get().values == {"glucose": 7.0}
    page = client.get(MINE, {"period": "7"}).content.decode()
    assert "126 mg/dL" in page and "Fasting" in page


def test_a_duplicate_post_is_stored_once(login: Login, alice: User) -> None:
    client = login(alice)
    client.post(ENTRY, _bp())
    second = client.post(ENTRY, _bp(), follow=True)
    assert "already saved" in second.content.decode()
    assert Reading.objects.count() == 1


def test_my_readings_filters_by_kind_and_period(login: Login, alice: User) -> None:
    record(alice, measured_at=NOW - timedelta(days=2))
    record(alice, kind="spo2", values={"spo2": 91}, measured_at=NOW - timedelta(days=3))
    record(alice, kind="spo2", values={"spo2": 97}, measured_at=NOW - timedelta(days=60))
    client = login(alice)
    page = client.get(MINE).content.decode()
    assert page.count("<tr class=") == 2  # the last 30 days by default
    assert "Low oxygen" in page and "data-vitals-chart" in page
    assert 'data-key="loading"' in page and "Flagged reading" in page  # the chart's messages and key
    assert "Alert: filled while open" not in page  # alert marks are the chart page's
    assert client.get(MINE, {"kind": "spo2", "period": "all"}).content.decode().count("<tr class=") == 2
    assert client.get(MINE, {"kind": "spo2", "period": "7"}).content.decode().count("<tr class=") == 1


def test_my_readings_costs_the_same_queries_for_more_rows(login: Login, alice: User) -> None:
    client = login(alice)
    record(alice)
    client.get(MINE)
    with CaptureQueriesContext(connection) as few:
        client.get(MINE)
    for minutes in range(20, 60):
        record(alice, measured_at=NOW - timedelta(minutes=minutes), values=CRISIS)
    with CaptureQueriesContext(connection) as more:
        assert client.get(MINE).content.decode().count("<tr class=") == 41
    assert len(more) == len(few)


def test_bob_enters_a_reading_for_alice(login: Login, alice: User, bob: User, appointment: Appointment) -> None:
    client = login(bob)
    url = reverse("vitals:staff_entry", args=[alice.pk, "blood_pressure"])
    page = client.get(url).content.decode()
    assert "For Alice" in page
    response = client.post(url, _bp(systolic="190", diastolic="100"))
    reading = Reading.objects.get()
    assert (reading.patient, reading.entered_by, reading.source) == (alice, bob, "staff")
    assert Alert.objects.filter(reading=reading).exists()
    assert client.get(response["Location"]).status_code == 200
    assert "Hypertensive crisis" in client.get(reverse("vitals:patient_readings", args=[alice.pk])).content.decode()


def test_carol_enters_for_a_patient_of_her_clinic_but_reads_no_record(
    login: Login, alice: User, carol: User, appointment: Appointment
) -> None:
    client = login(carol)
    chooser = client.get(reverse("vitals:patients"), {"q": "ali"}).content.decode()
    assert "Alice" in chooser
    response = client.post(reverse("vitals:staff_entry", args=[alice.pk, "blood_pressure"]), _bp())
    assert client.get(response["Location"]).status_code == 200  # the reading she typed, with its advice
    own_reading = record(alice, kind="spo2", values={"spo2": 97}).reading
    assert client.get(reverse("vitals:reading", args=[own_reading.pk])).status_code == 404
    assert client.get(reverse("vitals:patient_readings", args=[alice.pk])).status_code == 404
    assert (
        'placeholder="Last'
        not in client.get(reverse("vitals:staff_entry", args=[alice.pk, "blood_pressure"])).content.decode()
    )


def test_staff_entry_needs_the_patients_consent(login: Login, mallory: User, bob: User, clinic: object) -> None:
    Appointment.objects.create(
        patient=mallory,
        doctor=bob,
        clinic=clinic,  # type: ignore[misc]
        starts_at=NOW,
        ends_at=NOW + timedelta(minutes=30),
        mode="video",
        booked_by=bob,
    )
    page = (
        login(bob)
        .post(
            reverse("vitals:staff_entry", args=[mallory.pk, "spo2"]), {"spo2": "97", "measured_at": "2026-12-01T07:00"}
        )
        .content.decode()
    )
    assert "has not consented" in page
    assert Reading.objects.count() == 0


def test_unknown_kinds_are_not_found(login: Login, alice: User) -> None:
    assert login(alice).get(reverse("vitals:entry", args=["cholesterol"])).status_code == 404


# --- Who may see what ------------------------------------------------------------


@pytest.fixture
def alices_reading(alice: User) -> Reading:
    return record(alice).reading


def _pages(alice: User, reading: Reading) -> dict[str, str]:
    return {
        "patient_readings": reverse("vitals:patient_readings", args=[alice.pk]),
        "staff_entry": reverse("vitals:staff_entry", args=[alice.pk, "blood_pressure"]),
        "reading": reverse("vitals:reading", args=[reading.pk]),
    }


def test_anonymous_visitors_are_sent_to_sign_in(client: Client, alice: User, alices_reading: Reading) -> None:
    for url in [MINE, ENTRY, reverse("vitals:patients"), *_pages(alice, alices_reading).values()]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("account_login")), url
    assert client.post(ENTRY, _bp()).status_code == 302
    assert Reading.objects.count() == 1


@pytest.mark.usefixtures("appointment")
def test_mallory_and_dave_see_nothing_of_alices(
    login: Login, alice: User, mallory: User, dave: User, alices_reading: Reading
) -> None:
    for outsider in (mallory, dave):
        client = login(outsider)
        for name, url in _pages(alice, alices_reading).items():
            assert client.get(url).status_code == 404, (outsider, name)
        assert client.post(_pages(alice, alices_reading)["staff_entry"], _bp(systolic="140")).status_code == 404
        client.logout()
    assert Reading.objects.count() == 1


def test_mallorys_own_pages_show_none_of_alices(
    login: Login, alice: User, mallory: User, alices_reading: Reading
) -> None:
    from apps.accounts.services import consent_give

    consent_give(patient=mallory, given_by=mallory)
    page = login(mallory).get(MINE, {"period": "all"}).content.decode()
    assert "128/82" not in page
    assert login(mallory).get(reverse("vitals:patients")).status_code == 404  # patients have no chooser


def test_a_patient_without_consent_is_asked_for_it(login: Login, mallory: User) -> None:
    response = login(mallory).get(ENTRY)
    assert response["Location"] == reverse("accounts:consent")


@pytest.mark.usefixtures("appointment")
def test_bob_sees_alices_pages(login: Login, alice: User, bob: User, alices_reading: Reading) -> None:
    client = login(bob)
    for name, url in _pages(alice, alices_reading).items():
        assert client.get(url).status_code == 200, name
