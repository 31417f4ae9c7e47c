"""My patients: search, filters, latest readings and flags, pages, who may
see it, and what it costs in queries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.clinics.models import Clinic
from apps.scheduling.models import AppointmentStatus
from tests.care.dashboard_data import CRISIS, NOW, alert, appointment, patient_of, reading

Login = Callable[[User], Client]
pytestmark = pytest.mark.time_machine(NOW, tick=False)  # dashboard_data's "now"
URL = "/care/patients/"


@pytest.fixture
def booked(alice: User, bob: User, clinic: Clinic) -> None:
    appointment(patient=alice, doctor=bob, clinic=clinic, starts_at=NOW - timedelta(days=40))


def _names(page: str) -> list[str]:
    import re

    return re.findall(r"<strong>([^<]+)</strong></a>", page.split("<tbody>", 1)[-1])


def _diagnose(patient: User, doctor: User, clinic: Clinic, code: str, *, active: bool = True) -> None:
    from apps.care.models import ConsultNote, Diagnosis

    visit = appointment(
        patient=patient,
        doctor=doctor,
        clinic=clinic,
        starts_at=NOW - timedelta(days=20, minutes=patient.pk * 20),
        status=AppointmentStatus.COMPLETED,
    )
    note = ConsultNote.objects.create(appointment=visit, patient=patient, author=doctor)
    Diagnosis.objects.create(
        note=note, patient=patient, code=code, description=code, status="active" if active else "resolved"
    )


def test_the_url_is_care_patients() -> None:
    assert reverse("care:patients") == URL


def test_it_lists_the_doctors_patients_with_their_latest_readings(
    login: Login, alice: User, bob: User, clinic: Clinic, booked: None, settings: object
) -> None:
    settings.VITALS_GLUCOSE_UNIT = "mg/dL"  # type: ignore[attr-defined]
    reading(alice, measured_at=NOW - timedelta(days=3))
    reading(alice, values=CRISIS, measured_at=NOW - timedelta(hours=2))
    reading(alice, kind="glucose", values={"glucose": 7.0}, context="fasting", unit="mmol/L")
    patient_of(bob, clinic, name="Zhang Wei")

    page = login(bob).get(URL).content.decode()

    assert _names(page) == ["Alice", "Zhang Wei"]
    assert "190/110" in page
    assert "128/82" not in page  # only the latest
    assert "126 mg/dL" in page  # 7.0 mmol/L in the viewer's unit
    assert "severity-critical" in page
    assert "1 open alert" in page
    assert AuditEvent.objects.filter(actor=bob, object_type="patient_list", patient=alice).exists()


def test_it_finds_by_name_or_phone(login: Login, bob: User, clinic: Clinic, alice: User, booked: None) -> None:
    patient_of(bob, clinic, name="Zhang Wei", phone="+8613911112222")
    patient_of(bob, clinic, name="Li Na")
    client = login(bob)
    assert _names(client.get(URL, {"q": "zhang"}).content.decode()) == ["Zhang Wei"]
    assert _names(client.get(URL, {"q": "1111 2222"}).content.decode()) == ["Zhang Wei"]
    assert _names(client.get(URL, {"q": "138001"}).content.decode()) == ["Alice"]
    assert _names(client.get(URL, {"q": "nobody"}).content.decode()) == []


def test_it_filters_by_open_alerts(login: Login, bob: User, clinic: Clinic, alice: User, booked: None) -> None:
    calm = patient_of(bob, clinic, name="Calm Chen")
    alert(alice, severity="urgent", minutes_ago=5)
    acknowledged = alert(calm, severity="critical", minutes_ago=5)
    acknowledged.status = "acknowledged"
    acknowledged.save()
    assert _names(login(bob).get(URL, {"alerts": "on"}).content.decode()) == ["Alice"]


def test_it_filters_by_condition(login: Login, bob: User, clinic: Clinic, alice: User, booked: None) -> None:
    diabetic = patient_of(bob, clinic, name="Sugar Sun")
    cured = patient_of(bob, clinic, name="Cured Cao")
    _diagnose(alice, bob, clinic, "I10")
    _diagnose(diabetic, bob, clinic, "E11.9")
    _diagnose(cured, bob, clinic, "E11.9", active=False)
    client = login(bob)
    assert _names(client.get(URL, {"condition": "e11"}).content.decode()) == ["Sugar Sun"]
    assert _names(client.get(URL, {"condition": "I1"}).content.decode()) == ["Alice"]
    page = client.get(URL, {"condition": "11; DROP"}).content.decode()
    assert "Give the start of an ICD-10 code" in page


def test_it_filters_by_last_contact(login: Login, bob: User, clinic: Clinic, alice: User, booked: None) -> None:
    recent = patient_of(bob, clinic, name="Recent Ren")
    appointment(patient=recent, doctor=bob, clinic=clinic, starts_at=NOW - timedelta(days=2))
    future_only = patient_of(bob, clinic, name="Future Fu")
    appointment(patient=future_only, doctor=bob, clinic=clinic, starts_at=NOW + timedelta(days=2))
    client = login(bob)
    week_ago = (NOW - timedelta(days=7)).date().isoformat()
    today = NOW.date().isoformat()
    assert _names(client.get(URL, {"contact_from": week_ago, "contact_to": today}).content.decode()) == ["Recent Ren"]
    page = client.get(URL, {"contact_from": today, "contact_to": week_ago}).content.decode()
    assert "The end of the range must be after its start." in page


def test_it_pages(login: Login, bob: User, clinic: Clinic, db: None) -> None:
    for i in range(30):
        patient_of(bob, clinic, name=f"Patient {i:02d}")
    client = login(bob)
    first = client.get(URL).content.decode()
    assert len(_names(first)) == 25
    assert "Page 1 of 2" in first
    second = client.get(URL, {"page": 2, "q": "patient"}).content.decode()
    assert _names(second) == [f"Patient {i:02d}" for i in range(25, 30)]
    assert "q=patient&amp;page=1" in second
    assert client.get(URL, {"page": "nonsense"}).status_code == 200


# --- Who may see it ------------------------------------------------------------------


@pytest.mark.parametrize("who", ["alice", "mallory", "carol"])
def test_it_refuses_anyone_but_a_doctor(login: Login, request: pytest.FixtureRequest, who: str) -> None:
    assert login(request.getfixturevalue(who)).get(URL).status_code == 404


def test_it_sends_visitors_to_sign_in(client: Client, db: None) -> None:
    response = client.get(URL)
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


@pytest.mark.parametrize("who", ["dave", "erin"])
def test_another_doctor_does_not_see_bobs_patients(
    login: Login, request: pytest.FixtureRequest, alice: User, booked: None, who: str
) -> None:
    alert(alice, severity="critical", minutes_ago=5)
    page = login(request.getfixturevalue(who)).get(URL).content.decode()
    assert _names(page) == []
    assert "Alice" not in page


# --- Cost ---------------------------------------------------------------------------------


def _patients_with_readings(bob: User, clinic: Clinic, n: int, start: int) -> None:
    for i in range(start, start + n):
        patient = patient_of(bob, clinic, name=f"Patient {i:03d}")
        reading(patient, measured_at=NOW - timedelta(days=2))
        reading(patient, values=CRISIS, measured_at=NOW - timedelta(hours=1))
        reading(patient, kind="glucose", values={"glucose": 6.1}, context="fasting", unit="mmol/L")


def test_the_list_costs_the_same_queries_for_more_data(login: Login, bob: User, clinic: Clinic) -> None:
    client = login(bob)
    _patients_with_readings(bob, clinic, 2, 0)
    client.get(URL)
    with CaptureQueriesContext(connection) as few:
        client.get(URL, {"q": "patient", "alerts": "on"})
    _patients_with_readings(bob, clinic, 10, 2)
    with CaptureQueriesContext(connection) as more:
        page = client.get(URL, {"q": "patient", "alerts": "on"}).content.decode()
    assert len(_names(page)) == 12
    assert page.count("190/110") == 12
    assert len(more) == len(few), [q["sql"][:120] for q in more.captured_queries]


def test_it_flags_readings_overdue(login: Login, bob: User, clinic: Clinic, alice: User, booked: None) -> None:
    from apps.vitals.models import PatientTarget

    PatientTarget.objects.create(patient=alice, kind="blood_pressure", field="systolic", high=130, set_by=bob)
    reading(alice, measured_at=NOW - timedelta(days=8))
    diabetic = patient_of(bob, clinic, name="Sugar Sun")
    _diagnose(diabetic, bob, clinic, "E11.9")  # no glucose reading at all
    measured = patient_of(bob, clinic, name="Tidy Tang")
    PatientTarget.objects.create(patient=measured, kind="blood_pressure", field="systolic", high=130, set_by=bob)
    reading(measured, measured_at=NOW - timedelta(days=1))
    patient_of(bob, clinic, name="Untracked Wu")

    page = login(bob).get(URL).content.decode()
    rows = {name: page[page.index(f"<strong>{name}</strong>") :].split("</tr>", 1)[0] for name in _names(page)}
    flagged = {name for name, row in rows.items() if 'title="No blood pressure or glucose reading' in row}
    assert flagged == {"Alice", "Sugar Sun"}
