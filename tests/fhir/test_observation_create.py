"""POST /fhir/Observation and POST /fhir/ (batch and transaction Bundles):
FHIR vital-signs Observations recorded as readings through the vitals
services; every refusal an OperationOutcome with nothing written."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from apps.accounts.models import PersonalAccessToken, User
from apps.accounts.tokens import token_create, token_revoke
from apps.audit.models import AuditEvent
from apps.vitals.models import Reading
from tests.fhir.conftest import FHIR_JSON, bearer, get, post, r4b
from tests.vitals.conftest import NOW

pytestmark = pytest.mark.sqlite
URL = "/fhir/Observation"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def _quantity(value: Any, code: str) -> dict[str, Any]:
    return {"value": value, "unit": code, "system": UCUM, "code": code}


def bp(patient: User, *, systolic: Any = 142, diastolic: Any = 91, minutes: int = 3, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "subject": {"reference": f"Patient/{patient.pk}"},
        "effectiveDateTime": (NOW - timedelta(minutes=minutes)).isoformat(),
        "component": [
            {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": _quantity(systolic, "mm[Hg]")},
            {
                "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                "valueQuantity": _quantity(diastolic, "mm[Hg]"),
            },
            {"code": {"coding": [{"system": LOINC, "code": "8867-4"}]}, "valueQuantity": _quantity(72, "/min")},
        ],
    }
    body.update(extra)
    return body


def single(patient: User, code: str, value: Any, unit: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{patient.pk}"},
        "effectiveDateTime": (NOW - timedelta(minutes=5)).isoformat(),
        "valueQuantity": _quantity(value, unit),
    }
    body.update(extra)
    return body


def _issues(response: Any) -> list[dict[str, Any]]:
    data = response.json()
    assert data["resourceType"] == "OperationOutcome", data
    r4b(data)
    return list(data["issue"])


def test_it_records_a_blood_pressure_and_answers_201_with_the_observation(client: Client, alice: User) -> None:
    response = post(client, URL, bp(alice, note=[{"text": "left arm"}]), alice)
    assert response.status_code == 201, response.content
    assert response["Content-Type"].startswith(FHIR_JSON)
    reading = Reading.objects.get()
    assert response["Location"] == f"http://testserver/fhir/Observation/reading-{reading.pk}"
    assert (reading.kind, reading.values, reading.source, reading.note) == (
        "blood_pressure",
        {"systolic": 142, "diastolic": 91, "pulse": 72},
        "api",
        "left arm",
    )
    assert (reading.category, reading.severity, reading.entered_by) == ("bp_grade_1", "attention", alice)
    observation = response.json()
    r4b(observation)
    assert observation["id"] == f"reading-{reading.pk}"
    assert observation["interpretation"][0]["coding"][0]["code"] == "H"


def test_it_round_trips_an_observation(client: Client, alice: User) -> None:
    sent = bp(alice)
    created = post(client, URL, sent, alice)
    read = get(client, created["Location"], alice)
    assert read.status_code == 200
    observation = read.json()
    r4b(observation)
    assert observation == created.json()
    assert observation["effectiveDateTime"] == sent["effectiveDateTime"]
    values = {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in observation["component"]}
    assert values == {"8480-6": 142, "8462-4": 91, "8867-4": 72}


def test_it_takes_plain_application_json_too(client: Client, alice: User) -> None:
    import json

    response = client.post(URL, json.dumps(bp(alice)), content_type="application/json", **bearer(alice))
    assert response.status_code == 201


def test_it_marks_a_reading_from_a_device(client: Client, alice: User) -> None:
    post(client, URL, bp(alice, device={"display": "Omron M7"}), alice)
    assert Reading.objects.get().source == "device"


@pytest.mark.parametrize(
    ("code", "value", "unit", "kind", "stored"),
    [
        ("8310-5", 98.6, "[degF]", "temperature", {"temperature": 37}),
        ("29463-7", 154, "[lb_av]", "weight", {"weight": 69.85}),
        ("3141-9", 70500, "g", "weight", {"weight": 70.5}),
        ("8302-2", 1.7, "m", "height", {"height": 170}),
        ("2339-0", 99, "mg/dL", "glucose", {"glucose": 5.5}),
        ("15074-8", 6.2, "mmol/L", "glucose", {"glucose": 6.2}),
        ("59408-5", 96, "%", "spo2", {"spo2": 96}),
        ("8867-4", 61, "/min", "heart_rate", {"heart_rate": 61}),
    ],
)
def test_it_converts_units_to_the_canonical_ones(
    client: Client, alice: User, code: str, value: Any, unit: str, kind: str, stored: dict[str, Any]
) -> None:
    response = post(client, URL, single(alice, code, value, unit), alice)
    assert response.status_code == 201, response.content
    reading = Reading.objects.get()
    assert (reading.kind, reading.values) == (kind, stored)


def test_it_reads_the_glucose_context(client: Client, alice: User) -> None:
    body = single(
        alice, "2339-0", 95, "mg/dL", extension=[{"url": "urn:telemed:fhir:glucose-context", "valueCode": "fasting"}]
    )
    assert post(client, URL, body, alice).status_code == 201
    assert Reading.objects.get().context == "fasting"


def test_it_stores_the_same_observation_once(client: Client, alice: User) -> None:
    first = post(client, URL, bp(alice), alice)
    again = post(client, URL, bp(alice), alice)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again["Location"] == first["Location"]
    assert Reading.objects.count() == 1


def test_it_lets_bob_enter_a_reading_for_alice(client: Client, alice: User, bob: User, appointment: Any) -> None:
    response = post(client, URL, bp(alice), bob)
    assert response.status_code == 201
    reading = Reading.objects.get()
    assert (reading.patient, reading.entered_by) == (alice, bob)
    assert response.json()["performer"][0]["reference"] == f"Practitioner/{bob.pk}"


def test_it_answers_not_found_to_mallory_and_writes_nothing(client: Client, alice: User, mallory: User) -> None:
    response = post(client, URL, bp(alice), mallory)
    assert response.status_code == 404
    assert _issues(response)[0]["code"] == "not-found"
    assert not Reading.objects.exists()
    assert AuditEvent.objects.filter(action="access_denied", actor=mallory).exists()


def test_it_answers_not_found_for_a_patient_who_does_not_exist(client: Client, alice: User) -> None:
    body = bp(alice, subject={"reference": "Patient/999999"})
    assert post(client, URL, body, alice).status_code == 404


def test_it_needs_a_subject_from_someone_who_is_not_a_patient(client: Client, alice: User, bob: User) -> None:
    body = bp(alice)
    del body["subject"]
    response = post(client, URL, body, bob)
    assert response.status_code == 400
    assert "subject" in _issues(response)[0]["diagnostics"]


def test_it_takes_a_patients_own_reading_without_a_subject(client: Client, alice: User) -> None:
    body = bp(alice)
    del body["subject"]
    assert post(client, URL, body, alice).status_code == 201
    assert Reading.objects.get().patient == alice


def test_it_refuses_anonymous_callers_with_401(client: Client, alice: User) -> None:
    response = post(client, URL, bp(alice))
    assert response.status_code == 401
    assert _issues(response)[0]["code"] == "login"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not Reading.objects.exists()


def test_it_refuses_a_revoked_token(client: Client, alice: User) -> None:
    token, raw = token_create(user=alice, name="old", expires_in_days=30)
    token_revoke(token=token, by=alice)
    response = client.post(URL, "{}", content_type=FHIR_JSON, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 401
    assert _issues(response)[0]["code"] == "login"


def test_it_refuses_an_expired_token(client: Client, alice: User) -> None:
    token, raw = token_create(user=alice, name="old", expires_in_days=1)
    PersonalAccessToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    response = client.post(URL, bp(alice), content_type=FHIR_JSON, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 401
    assert not Reading.objects.exists()


def test_it_wants_the_csrf_token_from_a_session(alice: User) -> None:
    import json

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(URL, json.dumps(bp(alice)), content_type=FHIR_JSON)
    assert response.status_code == 403
    assert _issues(response)[0]["code"] == "security"
    assert not Reading.objects.exists()


def test_it_takes_a_session_with_its_csrf_token(alice: User) -> None:
    import json

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    client.get("/me/")
    token = client.cookies["csrftoken"].value
    response = client.post(URL, json.dumps(bp(alice)), content_type=FHIR_JSON, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201


def test_it_refuses_a_body_that_is_not_json(client: Client, alice: User) -> None:
    response = post(client, URL, b"{not json", alice)
    assert response.status_code == 400
    assert _issues(response)[0]["code"] == "structure"


def test_it_refuses_another_content_type(client: Client, alice: User) -> None:
    response = client.post(URL, "status=final", content_type="text/plain", **bearer(alice))
    assert response.status_code == 415
    assert _issues(response)[0]["code"] == "not-supported"


def test_it_refuses_an_invalid_resource_with_the_elements_at_fault(client: Client, alice: User) -> None:
    body = bp(alice)
    body["component"][0]["valueQuantity"]["value"] = "high"
    body["colour"] = "red"
    response = post(client, URL, body, alice)
    assert response.status_code == 400
    issues = _issues(response)
    expressions = {e for issue in issues for e in issue.get("expression", [])}
    assert {"Observation.component[0].valueQuantity.value", "Observation.colour"} <= expressions
    assert all(issue["diagnostics"] for issue in issues)
    assert not Reading.objects.exists()


def test_it_refuses_another_resource_type(client: Client, alice: User) -> None:
    response = post(client, URL, {"resourceType": "Patient"}, alice)
    assert response.status_code == 400
    assert not Reading.objects.exists()


def test_it_refuses_an_unknown_code(client: Client, alice: User) -> None:
    response = post(client, URL, single(alice, "2093-3", 5.1, "mmol/L"), alice)
    assert response.status_code == 422
    issue = _issues(response)[0]
    assert issue["code"] == "not-supported"
    assert "2093-3" in issue["diagnostics"]
    assert not Reading.objects.exists()


def test_it_refuses_a_unit_it_cannot_convert(client: Client, alice: User) -> None:
    response = post(client, URL, single(alice, "8310-5", 310, "K"), alice)
    assert response.status_code == 400
    assert _issues(response)[0]["expression"] == ["Observation.valueQuantity.code"]


def test_it_refuses_an_implausible_value(client: Client, alice: User) -> None:
    response = post(client, URL, bp(alice, systolic=400), alice)
    assert response.status_code == 422
    issue = _issues(response)[0]
    assert issue["expression"] == ["Observation.component"]
    assert "between 50 and 300" in issue["diagnostics"]
    assert not Reading.objects.exists()


def test_it_refuses_a_time_in_the_future(client: Client, alice: User) -> None:
    response = post(client, URL, bp(alice, minutes=-60), alice)
    assert response.status_code == 422
    assert _issues(response)[0]["expression"] == ["Observation.effectiveDateTime"]


@pytest.mark.parametrize("effective", ["2026-11-30", "2026-11-30T10:00:00"])
def test_it_wants_a_time_with_its_offset(client: Client, alice: User, effective: str) -> None:
    response = post(client, URL, bp(alice, effectiveDateTime=effective), alice)
    assert response.status_code == 400
    assert not Reading.objects.exists()


def test_it_refuses_an_observation_without_a_status(client: Client, alice: User) -> None:
    body = bp(alice)
    del body["status"]
    response = post(client, URL, body, alice)
    assert response.status_code == 400
    assert _issues(response)[0]["expression"] == ["Observation.status"]
    assert not Reading.objects.exists()


def test_it_refuses_an_observation_that_is_not_final(client: Client, alice: User) -> None:
    response = post(client, URL, bp(alice, status="preliminary"), alice)
    assert response.status_code == 400
    assert _issues(response)[0]["expression"] == ["Observation.status"]


def test_it_refuses_a_blood_pressure_without_its_diastolic(client: Client, alice: User) -> None:
    body = bp(alice)
    body["component"] = body["component"][:1]
    response = post(client, URL, body, alice)
    assert response.status_code == 400
    assert not Reading.objects.exists()


def test_it_refuses_without_consent(client: Client, alice: User) -> None:
    from apps.accounts.services import consent_withdraw

    consent_withdraw(patient=alice, withdrawn_by=alice)
    response = post(client, URL, bp(alice), alice)
    assert response.status_code == 403
    assert not Reading.objects.exists()


# --- Bundles -----------------------------------------------------------------------------


def _bundle(kind: str, *resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [
            {
                "fullUrl": f"urn:uuid:00000000-0000-0000-0000-00000000000{i}",
                "resource": r,
                "request": {"method": "POST", "url": "Observation"},
            }
            for i, r in enumerate(resources)
        ],
    }


def test_a_transaction_records_every_entry(client: Client, alice: User) -> None:
    bundle = _bundle("transaction", bp(alice), single(alice, "8867-4", 61, "/min"), bp(alice))
    response = post(client, "/fhir/", bundle, alice)
    assert response.status_code == 200, response.content
    data = response.json()
    r4b(data)
    assert data["type"] == "transaction-response"
    assert [e["response"]["status"] for e in data["entry"]] == ["201 Created", "201 Created", "200 OK"]
    assert Reading.objects.count() == 2
    assert data["entry"][0]["response"]["location"] == data["entry"][2]["response"]["location"]


def test_a_transaction_is_all_or_nothing(client: Client, alice: User) -> None:
    bundle = _bundle("transaction", bp(alice), single(alice, "8867-4", 61, "/min"), bp(alice, systolic=400, minutes=9))
    response = post(client, "/fhir/", bundle, alice)
    assert response.status_code == 422
    issues = _issues(response)
    assert issues[0]["expression"] == ["Bundle.entry[2].resource.component"]
    assert not Reading.objects.exists()


def test_a_transaction_with_an_invalid_entry_writes_nothing(client: Client, alice: User) -> None:
    broken = bp(alice)
    del broken["code"]
    response = post(client, "/fhir/", _bundle("transaction", bp(alice), broken), alice)
    assert response.status_code == 400
    assert _issues(response)[0]["expression"] == ["Bundle.entry[1].resource.code"]
    assert not Reading.objects.exists()


def test_a_transaction_for_mallory_is_not_found(client: Client, alice: User, mallory: User) -> None:
    response = post(client, "/fhir/", _bundle("transaction", bp(alice)), mallory)
    assert response.status_code == 404
    assert not Reading.objects.exists()


def test_a_batch_answers_each_entry(client: Client, alice: User) -> None:
    bundle = _bundle(
        "batch",
        bp(alice),
        single(alice, "2093-3", 5.1, "mmol/L"),
        bp(alice, systolic=400, minutes=9),
        single(alice, "8867-4", 61, "/min"),
    )
    bundle["entry"].append({"resource": bp(alice), "request": {"method": "PUT", "url": "Observation/1"}})
    response = post(client, "/fhir/", bundle, alice)
    assert response.status_code == 200
    data = response.json()
    r4b(data)
    assert data["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in data["entry"]]
    assert statuses == [
        "201 Created",
        "422 Unprocessable Entity",
        "422 Unprocessable Entity",
        "201 Created",
        "400 Bad Request",
    ]
    assert data["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert Reading.objects.count() == 2


def test_it_refuses_a_bundle_of_another_type(client: Client, alice: User) -> None:
    response = post(client, "/fhir/", _bundle("collection", bp(alice)), alice)
    assert response.status_code == 400
    assert not Reading.objects.exists()


def test_the_bundle_endpoint_refuses_anonymous_callers(client: Client, alice: User) -> None:
    assert post(client, "/fhir/", _bundle("batch", bp(alice))).status_code == 401


def test_the_clinic_admin_enters_a_reading_for_a_booked_patient(
    client: Client, alice: User, carol: User, appointment: Any
) -> None:
    response = post(client, URL, bp(alice), carol)
    assert response.status_code == 201
    assert Reading.objects.get().entered_by == carol


def test_a_doctor_without_a_relation_gets_not_found(client: Client, alice: User, dave: User, appointment: Any) -> None:
    assert post(client, URL, bp(alice), dave).status_code == 404
    assert not Reading.objects.exists()


def test_it_refuses_a_value_with_a_comparator(client: Client, alice: User) -> None:
    body = single(alice, "8867-4", 30, "/min")
    body["valueQuantity"]["comparator"] = "<"
    response = post(client, URL, body, alice)
    assert response.status_code == 400
    assert _issues(response)[0]["expression"] == ["Observation.valueQuantity.comparator"]


def test_it_answers_a_token_caller_in_their_language(client: Client, alice: User) -> None:
    alice.language = "zh-hans"
    alice.save()
    response = post(client, URL, bp(alice, systolic=400), alice)
    assert response.status_code == 422
    assert "50" in _issues(response)[0]["diagnostics"]
    assert "between" not in _issues(response)[0]["diagnostics"]
