"""The doctor's dashboard: today, the triage queue, the numbers at a glance,
who may see it, and what it costs in queries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.accounts.models import User
from apps.clinics.models import Clinic
from apps.consults.models import Consult, ConsultState
from apps.scheduling.models import AppointmentStatus
from apps.vitals.models import PatientTarget
from tests.care.dashboard_data import CRISIS, NOW, alert, appointment, in_the_room, patient_of, reading
from tests.factories import ClinicFactory

Login = Callable[[User], Client]
pytestmark = pytest.mark.time_machine(NOW, tick=False)  # dashboard_data's "now"


@pytest.fixture
def booked(alice: User, bob: User, clinic: Clinic) -> None:
    """Alice saw Bob last month: Bob is her doctor."""
    appointment(patient=alice, doctor=bob, clinic=clinic, starts_at=NOW - timedelta(days=40))


def _triage_ids(page: str) -> list[int]:
    import re

    return [int(found) for found in re.findall(r'data-alert-id="(\d+)"', page)]


# --- Who may see it ------------------------------------------------------------------


def test_it_is_the_doctors_home(login: Login, bob: User) -> None:
    page = login(bob).get("/").content.decode()
    assert "Triage" in page
    assert "Today" in page
    assert "Waiting now" in page


def test_the_clinic_admins_home_is_unchanged(login: Login, carol: User) -> None:
    page = login(carol).get("/").content.decode()
    assert "Staff and invitations" in page
    assert "Triage" not in page


@pytest.mark.parametrize("who", ["alice", "mallory", "carol"])
@pytest.mark.parametrize("name", ["care:dashboard", "care:triage"])
def test_it_refuses_anyone_but_a_doctor(login: Login, request: pytest.FixtureRequest, who: str, name: str) -> None:
    assert login(request.getfixturevalue(who)).get(reverse(name)).status_code == 404


@pytest.mark.parametrize("name", ["care:dashboard", "care:triage"])
def test_it_sends_visitors_to_sign_in(client: Client, db: None, name: str) -> None:
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


@pytest.mark.parametrize("who", ["dave", "erin"])
def test_another_doctor_does_not_see_bobs_patients_alerts(
    login: Login, request: pytest.FixtureRequest, alice: User, bob: User, booked: None, who: str
) -> None:
    raised = alert(alice, severity="critical", minutes_ago=5)
    assert _triage_ids(login(bob).get(reverse("care:dashboard")).content.decode()) == [raised.pk]
    page = login(request.getfixturevalue(who)).get(reverse("care:dashboard")).content.decode()
    assert _triage_ids(page) == []
    assert "Alice" not in page


# --- The triage queue ------------------------------------------------------------------


def test_it_orders_the_queue_critical_urgent_attention_newest_first(
    login: Login, alice: User, bob: User, clinic: Clinic, booked: None
) -> None:
    other = patient_of(bob, clinic, name="Zhang Wei")
    urgent_old = alert(alice, severity="urgent", minutes_ago=50)
    attention_new = alert(other, severity="attention", minutes_ago=1)
    critical_old = alert(other, severity="critical", minutes_ago=40)
    urgent_new = alert(other, severity="urgent", minutes_ago=2)
    critical_new = alert(alice, severity="critical", minutes_ago=30)
    acknowledged = alert(alice, severity="critical", minutes_ago=3)
    acknowledged.status = "acknowledged"
    acknowledged.save()

    page = login(bob).get(reverse("care:triage")).content.decode()

    assert _triage_ids(page) == [critical_new.pk, critical_old.pk, urgent_new.pk, urgent_old.pk, attention_new.pk]


def test_each_alert_shows_the_reading_that_raised_it(
    login: Login, alice: User, bob: User, booked: None, deliver: Callable[[], object]
) -> None:
    crisis = reading(alice, values=CRISIS, measured_at=NOW - timedelta(minutes=7))
    page = login(bob).get(reverse("care:dashboard")).content.decode()
    assert "190/110 mmHg" in page
    assert reverse("vitals:reading", args=[crisis.pk]) in page
    assert "08:53" in page  # in the doctor's zone
    assert reverse("care:patient_message", args=[alice.pk]) in page
    assert reverse("care:alert_acknowledge", args=[crisis.alert.pk]) in page


# --- Today ------------------------------------------------------------------------------


def test_today_lists_the_appointments_with_where_they_stand(
    login: Login, bob: User, clinic: Clinic, booked: None
) -> None:
    names = ["Upcoming Li", "Waiting Wang", "Consulting Chen", "Done Zhao", "Absent Sun", "Cancelled Zhou"]
    patients = [patient_of(bob, clinic, name=name) for name in names]
    at = NOW.replace(hour=8)
    _upcoming, waiting, consulting, done, absent, cancelled = (
        appointment(patient=p, doctor=bob, clinic=clinic, starts_at=at + timedelta(minutes=20 * i))
        for i, p in enumerate(patients)
    )
    in_the_room(waiting)
    Consult.objects.create(appointment=consulting, state=ConsultState.IN_PROGRESS, started_at=NOW)
    done.status = AppointmentStatus.COMPLETED
    done.save()
    absent.status = AppointmentStatus.NO_SHOW
    absent.save()
    cancelled.status = AppointmentStatus.CANCELLED
    cancelled.save()
    appointment(patient=patients[1], doctor=bob, clinic=clinic, starts_at=NOW + timedelta(days=1))  # not today

    page = login(bob).get(reverse("care:dashboard")).content.decode()
    today = page[page.index('id="today"') :]

    assert 'class="day-upcoming"' in today
    for status in ("day-waiting", "day-in_consult", "day-done", "day-no_show"):
        assert f'class="{status}"' in today
    assert "Cancelled Zhou" not in today
    assert today.count("<tr class=") == 5
    assert reverse("consults:room", args=[waiting.pk]) in today


# --- Numbers at a glance ---------------------------------------------------------------


def test_it_counts_patients_whose_readings_are_overdue(
    login: Login, alice: User, bob: User, clinic: Clinic, booked: None
) -> None:
    PatientTarget.objects.create(patient=alice, kind="blood_pressure", field="systolic", high=130, set_by=bob)
    reading(alice, measured_at=NOW - timedelta(days=8))
    recent = patient_of(bob, clinic, name="Recent Reader")
    PatientTarget.objects.create(patient=recent, kind="blood_pressure", field="systolic", high=130, set_by=bob)
    reading(recent, measured_at=NOW - timedelta(days=2))
    patient_of(bob, clinic, name="No Target")  # no readings expected of them

    client = login(bob)
    page = client.get(reverse("care:dashboard")).content.decode()
    glance = page[page.index("data-glance") : page.index("</ul>", page.index("data-glance"))]
    assert "<strong>1</strong> readings overdue" in " ".join(glance.split())

    overdue = client.get(reverse("care:patients"), {"overdue": "on"}).content.decode()
    assert "Alice" in overdue
    assert "Recent Reader" not in overdue
    assert "No Target" not in overdue


def test_the_numbers_count_consults_waiting_and_alerts(
    login: Login, alice: User, bob: User, clinic: Clinic, booked: None
) -> None:
    today = appointment(patient=alice, doctor=bob, clinic=clinic, starts_at=NOW.replace(hour=10))
    in_the_room(today)
    alert(alice, severity="urgent", minutes_ago=5)
    alert(alice, severity="critical", minutes_ago=6)
    page = " ".join(login(bob).get(reverse("care:dashboard")).content.decode().split())
    assert "<strong data-glance-today>1</strong> consults today" in page
    assert "<strong data-glance-waiting>1</strong> waiting now" in page
    assert "<strong data-glance-alerts>2</strong> open alerts" in page


# --- Cost ---------------------------------------------------------------------------------


def _dashboard_data(bob: User, clinic: Clinic, n: int, start: int) -> None:
    for i in range(start, start + n):
        patient = patient_of(bob, clinic, name=f"Patient {i:03d}")
        PatientTarget.objects.create(patient=patient, kind="blood_pressure", field="systolic", high=130, set_by=bob)
        alert(patient, severity="critical" if i % 2 else "urgent", minutes_ago=i + 1)
        alert(patient, severity="attention", minutes_ago=i + 100)
        booked = appointment(patient=patient, doctor=bob, clinic=clinic, starts_at=NOW + timedelta(minutes=20 * i))
        if i % 3 == 0:
            in_the_room(booked)


def test_the_dashboard_costs_the_same_queries_for_more_data(login: Login, bob: User, clinic: Clinic) -> None:
    client = login(bob)
    _dashboard_data(bob, clinic, 2, 0)
    client.get(reverse("care:dashboard"))
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("care:dashboard"))
    _dashboard_data(bob, clinic, 8, 2)
    with CaptureQueriesContext(connection) as more:
        page = client.get(reverse("care:dashboard")).content.decode()
    assert len(_triage_ids(page)) == 20
    assert page.count("Patient 0") >= 20
    assert len(more) == len(few), [q["sql"][:120] for q in more.captured_queries]


def test_an_admin_who_also_consults_keeps_the_clinic_links(login: Login, bob: User, clinic: Clinic) -> None:
    from apps.clinics.models import Membership, Role

    Membership.objects.create(user=bob, clinic=ClinicFactory(name="Riverside"), role=Role.ADMIN)
    page = login(bob).get("/").content.decode()
    assert "Clinics I manage" in page
    assert "Riverside" in page


def test_it_lists_referrals_to_the_doctor_and_their_alerts(
    login: Login, alice: User, bob: User, dave: User, clinic: Clinic
) -> None:
    from apps.care.models import Referral

    Referral.objects.create(patient=alice, from_doctor=bob, to_doctor=dave, reason="Second opinion on the ECG")
    raised = alert(alice, severity="urgent", minutes_ago=3)
    page = login(dave).get(reverse("care:dashboard")).content.decode()
    referrals = page[page.index('id="referrals"') :]
    assert "Alice" in referrals
    assert "Second opinion on the ECG" in referrals
    assert "from Bob" in referrals
    # The referral gives Dave the chart, and so her alerts.
    assert _triage_ids(page) == [raised.pk]


def test_an_ecg_alert_links_to_the_recording(login: Login, alice: User, bob: User, booked: None) -> None:
    from apps.vitals.models import Alert, EcgRecording

    ecg = EcgRecording.objects.create(
        patient=alice,
        uploaded_by=alice,
        storage_key="k" * 32,
        original_name="watch.csv",
        size_bytes=1000,
        sha256="0" * 64,
        file_format="apple_watch_csv",
        status="done",
        category="ecg_irregular_rr",
        severity="urgent",
        recorded_at=NOW - timedelta(hours=2),
    )
    Alert.objects.create(patient=alice, ecg_recording=ecg, severity="urgent")
    page = login(bob).get(reverse("care:triage")).content.decode()
    assert reverse("vitals:ecg_recording", args=[ecg.pk]) in page
    assert "Irregular heart rhythm on the ECG" in page
    assert "12-01 07:00" in page  # recorded, in the doctor's zone


def test_the_today_partial_follows_the_waiting_room(login: Login, alice: User, bob: User, clinic: Clinic) -> None:
    today = appointment(patient=alice, doctor=bob, clinic=clinic, starts_at=NOW + timedelta(minutes=5))
    client = login(bob)
    assert 'class="day-upcoming"' in client.get(reverse("care:today")).content.decode()
    in_the_room(today)
    page = client.get(reverse("care:today")).content.decode()
    assert 'class="day-waiting"' in page
    assert 'data-consults="1"' in page
    assert reverse("consults:room", args=[today.pk]) in page


@pytest.mark.parametrize("who", ["alice", "mallory", "carol"])
def test_the_today_partial_is_the_doctors_only(login: Login, request: pytest.FixtureRequest, who: str) -> None:
    assert login(request.getfixturevalue(who)).get(reverse("care:today")).status_code == 404


def test_the_today_partial_sends_visitors_to_sign_in(client: Client, db: None) -> None:
    assert client.get(reverse("care:today")).status_code == 302
