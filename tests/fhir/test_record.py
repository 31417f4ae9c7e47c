"""The record export (issue 7): GET /fhir/Patient/<id>, its $everything
Bundle, the Appointment, Encounter and Condition searches and reads, and
the patient's own download and printable summary. Same access rules as the
chart, audited as exports, validated with the R4B models, a fixed number
of queries whatever the size of the record."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.care.models import ConsultNote, Diagnosis, NoteStatus
from apps.clinics.models import Clinic
from apps.consults.models import Consult, ConsultState
from apps.scheduling.models import Appointment, AppointmentStatus
from apps.vitals.services import ReadingInput, readings_record_many
from tests.fhir.conftest import bearer, get, r4b
from tests.fhir.ecg_support import make_ecg
from tests.vitals.conftest import NOW, record

pytestmark = pytest.mark.sqlite


@pytest.fixture
def history(alice: User, bob: User, clinic: Clinic, appointment: Appointment) -> dict[str, Any]:
    """Alice's record: a consult last week (ended, with a signed note and
    a diagnosis, and a draft note's diagnosis that is not yet part of it),
    tomorrow's appointment, two readings and an ECG."""
    starts = NOW - timedelta(days=7)
    past = Appointment.objects.create(
        patient=alice,
        doctor=bob,
        clinic=clinic,
        starts_at=starts,
        ends_at=starts + timedelta(minutes=30),
        mode="video",
        booked_by=alice,
        reason="Headaches",
        status=AppointmentStatus.COMPLETED,
        completed_at=starts + timedelta(minutes=25),
    )
    Consult.objects.create(
        appointment=past,
        state=ConsultState.ENDED,
        started_at=starts + timedelta(minutes=2),
        ended_at=starts + timedelta(minutes=20),
    )
    note = ConsultNote.objects.create(appointment=past, patient=alice, author=bob, assessment="Hypertension")
    diagnosis = Diagnosis.objects.create(
        note=note, patient=alice, code="I10", description="Essential (primary) hypertension", is_primary=True
    )
    ConsultNote.objects.filter(pk=note.pk).update(status=NoteStatus.SIGNED, signed_at=starts, signed_by=bob)
    draft = ConsultNote.objects.create(appointment=appointment, patient=alice, author=bob)
    Diagnosis.objects.create(note=draft, patient=alice, code="E11.9", description="Type 2 diabetes mellitus")
    return {
        "past": past,
        "future": appointment,
        "diagnosis": diagnosis,
        "bp": record(alice).reading,
        "glucose": record(alice, kind="glucose", values={"glucose": 99}, unit="mg/dL", context="fasting").reading,
        "ecg": make_ecg(alice),
    }


def _by_type(bundle: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for entry in bundle["entry"]:
        found.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"]["id"])
    return found


def _many(patient: User, count: int) -> None:
    items = [
        ReadingInput(
            patient=patient,
            kind="blood_pressure",
            values={"systolic": 120 + i % 40, "diastolic": 80},
            measured_at=NOW - timedelta(hours=i + 1),
            source="device",
        )
        for i in range(count)
    ]
    readings_record_many(by=patient, items=items)


# --- Patient ---------------------------------------------------------------------------


def test_it_reads_the_patient(client: Client, alice: User) -> None:
    profile = alice.patient_profile
    profile.emergency_contact_name = "Bao"
    profile.emergency_contact_phone = "+8613800138111"
    profile.save()
    response = get(client, f"/fhir/Patient/{alice.pk}", alice)
    assert response.status_code == 200
    patient = response.json()
    r4b(patient)
    assert patient["id"] == str(alice.pk)
    assert patient["name"][0]["text"] == "Alice"
    assert {"system": "phone", "value": "+8613800138000", "use": "mobile"} in patient["telecom"]
    assert patient["contact"][0]["name"]["text"] == "Bao"
    assert patient["address"][0]["district"] == "Hillside"
    assert AuditEvent.objects.filter(action="view", object_type="fhir_patient", patient=alice).exists()


@pytest.mark.parametrize(
    ("who", "status"), [("alice", 200), ("bob", 200), ("dave", 404), ("carol", 404), ("mallory", 404)]
)
def test_it_reads_the_patient_by_the_access_rules(
    client: Client, request: pytest.FixtureRequest, alice: User, appointment: Appointment, who: str, status: int
) -> None:
    caller = request.getfixturevalue(who)
    assert get(client, f"/fhir/Patient/{alice.pk}", caller).status_code == status


# --- $everything -------------------------------------------------------------------------


def test_everything_gives_the_whole_record_as_a_valid_bundle(client: Client, alice: User, history: Any) -> None:
    response = get(client, f"/fhir/Patient/{alice.pk}/$everything", alice)
    assert response.status_code == 200
    bundle = response.json()
    parsed = r4b(bundle)
    assert parsed.type == "searchset"
    assert bundle["entry"][0]["resource"]["resourceType"] == "Patient"
    assert bundle["entry"][0]["search"]["mode"] == "match"
    found = _by_type(bundle)
    assert set(found["Observation"]) == {
        f"reading-{history['bp'].pk}",
        f"reading-{history['glucose'].pk}",
        f"ecg-{history['ecg'].pk}",
    }
    assert set(found["Appointment"]) == {str(history["past"].pk), str(history["future"].pk)}
    assert found["Encounter"] == [str(history["past"].pk)]
    assert found["Condition"] == [str(history["diagnosis"].pk)]
    assert bundle["total"] == len(bundle["entry"])
    event = AuditEvent.objects.get(action="export", object_type="fhir_everything")
    assert (event.actor, event.patient) == (alice, alice)


def test_everything_maps_the_encounter_and_the_condition(client: Client, alice: User, history: Any) -> None:
    bundle = get(client, f"/fhir/Patient/{alice.pk}/$everything", alice).json()
    resources = {(e["resource"]["resourceType"], e["resource"]["id"]): e["resource"] for e in bundle["entry"]}
    past = history["past"]
    encounter = resources[("Encounter", str(past.pk))]
    assert encounter["status"] == "finished"
    assert encounter["class"]["code"] == "VR"
    assert encounter["period"] == {"start": "2026-11-24T08:02:00+08:00", "end": "2026-11-24T08:20:00+08:00"}
    assert encounter["appointment"] == [{"reference": f"Appointment/{past.pk}"}]
    condition = resources[("Condition", str(history["diagnosis"].pk))]
    assert condition["code"]["coding"][0] == {
        "system": "http://hl7.org/fhir/sid/icd-10-cm",
        "code": "I10",
        "display": "Essential (primary) hypertension",
    }
    assert condition["clinicalStatus"]["coding"][0]["code"] == "active"
    assert condition["encounter"] == {"reference": f"Encounter/{past.pk}"}
    appointment = resources[("Appointment", str(history["future"].pk))]
    assert appointment["status"] == "booked"
    assert resources[("Appointment", str(past.pk))]["status"] == "fulfilled"


@pytest.mark.parametrize(("who", "status"), [("bob", 200), ("dave", 404), ("carol", 404), ("mallory", 404)])
def test_everything_follows_the_access_rules(
    client: Client, request: pytest.FixtureRequest, alice: User, history: Any, who: str, status: int
) -> None:
    caller = request.getfixturevalue(who)
    response = get(client, f"/fhir/Patient/{alice.pk}/$everything", caller)
    assert response.status_code == status
    if status == 404:
        assert "Alice" not in response.content.decode()
        assert not AuditEvent.objects.filter(action="export", actor=caller).exists()


def test_everything_refuses_anonymous_callers(client: Client, alice: User) -> None:
    response = client.get(f"/fhir/Patient/{alice.pk}/$everything")
    assert response.status_code == 401
    assert response.json()["resourceType"] == "OperationOutcome"


def test_everything_costs_a_fixed_number_of_queries(client: Client, alice: User, history: Any) -> None:
    headers = bearer(alice)
    url = f"/fhir/Patient/{alice.pk}/$everything"
    client.get(url, **headers)
    with CaptureQueriesContext(connection) as small:
        client.get(url, **headers)
    _many(alice, 80)
    make_ecg(alice, sha256="e" * 64)
    with CaptureQueriesContext(connection) as large:
        response = client.get(url, **headers)
    assert len(response.json()["entry"]) > 80
    assert len(large) == len(small)


# --- Searches and reads -------------------------------------------------------------------


@pytest.mark.parametrize(("resource", "count"), [("Appointment", 2), ("Encounter", 1), ("Condition", 1)])
def test_it_searches_by_patient(
    client: Client, alice: User, bob: User, history: Any, resource: str, count: int
) -> None:
    response = get(client, f"/fhir/{resource}?patient={alice.pk}", bob)
    assert response.status_code == 200
    bundle = response.json()
    r4b(bundle)
    assert bundle["total"] == count
    assert all(e["resource"]["resourceType"] == resource for e in bundle["entry"])
    assert AuditEvent.objects.filter(action="export", object_type=f"fhir_{resource.lower()}s", patient=alice).exists()


@pytest.mark.parametrize("resource", ["Appointment", "Encounter", "Condition"])
def test_searches_refuse_mallory_and_anonymous_callers(
    client: Client, alice: User, mallory: User, history: Any, resource: str
) -> None:
    assert get(client, f"/fhir/{resource}?patient={alice.pk}", mallory).status_code == 404
    assert client.get(f"/fhir/{resource}?patient={alice.pk}").status_code == 401


def test_it_pages_appointments(client: Client, alice: User, history: Any) -> None:
    bundle = get(client, f"/fhir/Appointment?patient={alice.pk}&_count=1", alice).json()
    assert bundle["total"] == 2 and len(bundle["entry"]) == 1
    assert "next" in {link["relation"] for link in bundle["link"]}


@pytest.mark.parametrize("resource", ["Appointment", "Encounter", "Condition"])
def test_it_reads_one_resource(client: Client, alice: User, mallory: User, history: Any, resource: str) -> None:
    resource_id = history["diagnosis"].pk if resource == "Condition" else history["past"].pk
    response = get(client, f"/fhir/{resource}/{resource_id}", alice)
    assert response.status_code == 200
    assert r4b(response.json()).id == str(resource_id)
    assert get(client, f"/fhir/{resource}/{resource_id}", mallory).status_code == 404
    assert client.get(f"/fhir/{resource}/{resource_id}").status_code == 401


def test_an_appointment_that_has_not_taken_place_is_no_encounter(client: Client, alice: User, history: Any) -> None:
    assert get(client, f"/fhir/Encounter/{history['future'].pk}", alice).status_code == 404


def test_a_draft_notes_diagnosis_is_not_a_condition(client: Client, alice: User, history: Any) -> None:
    draft = Diagnosis.objects.get(code="E11.9")
    assert get(client, f"/fhir/Condition/{draft.pk}", alice).status_code == 404


def test_the_capability_statement_is_open(client: Client, db: None) -> None:
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    assert r4b(response.json()).fhirVersion == "4.0.1"


# --- The patient's own download and summary --------------------------------------------------


def test_the_patient_downloads_her_record(login: Any, alice: User, history: Any) -> None:
    response = login(alice).get("/fhir/me/export.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json"
    assert response["Content-Disposition"].startswith('attachment; filename="health-record-')
    bundle = json.loads(response.content)
    assert r4b(bundle).type == "collection"
    assert set(_by_type(bundle)) == {"Patient", "Observation", "Appointment", "Encounter", "Condition"}
    assert AuditEvent.objects.filter(action="export", object_type="fhir_export", patient=alice).exists()


def test_mallory_downloads_only_her_own_record(login: Any, alice: User, mallory: User, history: Any) -> None:
    response = login(mallory).get("/fhir/me/export.json")
    assert response.status_code == 200
    bundle = json.loads(response.content)
    assert _by_type(bundle) == {"Patient": [str(mallory.pk)]}
    assert "Alice" not in response.content.decode()


@pytest.mark.parametrize("path", ["/fhir/me/export.json", "/fhir/me/summary/"])
def test_the_download_and_summary_need_a_sign_in(client: Client, db: None, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("path", ["/fhir/me/export.json", "/fhir/me/summary/"])
def test_a_doctor_has_no_record_to_download(login: Any, bob: User, path: str) -> None:
    assert login(bob).get(path).status_code == 404


def test_the_summary_shows_the_record_in_the_patients_language(login: Any, alice: User, history: Any) -> None:
    alice.language = "zh-hans"
    alice.save()
    response = login(alice).get("/fhir/me/summary/")
    assert response.status_code == 200
    page = response.content.decode()
    assert '<html lang="zh-hans"' in page
    assert "I10" in page and "Essential (primary) hypertension" in page
    assert "142" not in page  # only what was recorded
    assert "128/82 mmHg" in page
    assert "99 mg/dL" in page or "5.5 mmol/L" in page
    assert "E11.9" not in page  # a draft's diagnosis
    assert AuditEvent.objects.filter(action="export", object_type="record_summary", patient=alice).exists()


def test_the_summary_costs_a_fixed_number_of_queries(login: Any, alice: User, history: Any) -> None:
    client = login(alice)
    client.get("/fhir/me/summary/")
    with CaptureQueriesContext(connection) as small:
        client.get("/fhir/me/summary/")
    _many(alice, 40)
    with CaptureQueriesContext(connection) as large:
        assert client.get("/fhir/me/summary/").status_code == 200
    assert len(large) == len(small)


def test_the_profile_page_links_to_the_record(login: Any, alice: User, bob: User) -> None:
    page = login(alice).get("/me/").content.decode()
    assert "/fhir/me/summary/" in page and "/fhir/me/export.json" in page


# --- The care rules: care team, referral, break-glass --------------------------------------


@pytest.fixture
def erin(db: None) -> User:
    """A doctor of another clinic, with no relation to Alice."""
    from tests.factories import ClinicFactory, make_doctor

    return make_doctor(clinic=ClinicFactory(name="Riverside"), full_name="Erin", email="erin@example.org")


def _everything(client: Client, patient: User, caller: User) -> int:
    return int(get(client, f"/fhir/Patient/{patient.pk}/$everything", caller).status_code)


def test_a_doctor_of_another_clinic_reads_after_breaking_the_glass(
    client: Client, alice: User, erin: User, history: Any
) -> None:
    from apps.care.services import break_glass_open

    assert _everything(client, alice, erin) == 404
    break_glass_open(doctor=erin, patient=alice, reason="Unconscious at the village clinic, no history")
    assert _everything(client, alice, erin) == 200
    assert get(client, f"/fhir/Observation?patient={alice.pk}", erin).status_code == 200


def test_a_care_team_doctor_reads_the_record(
    client: Client, alice: User, bob: User, dave: User, clinic: Clinic
) -> None:
    from apps.care.models import CareTeamMembership

    assert _everything(client, alice, dave) == 404
    CareTeamMembership.objects.create(patient=alice, doctor=dave, clinic=clinic, added_by=bob)
    assert _everything(client, alice, dave) == 200


def test_a_referred_doctor_reads_the_record(client: Client, alice: User, bob: User, erin: User, history: Any) -> None:
    from apps.care.models import Referral

    Referral.objects.create(patient=alice, from_doctor=bob, to_doctor=erin, reason="Cardiology opinion")
    assert _everything(client, alice, erin) == 200
    assert get(client, f"/fhir/Condition?patient={alice.pk}", erin).status_code == 200
