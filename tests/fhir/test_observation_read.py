"""GET /fhir/Observation/<id> and GET /fhir/Observation?patient=…: the
patient's readings and ECG recordings as Observations, with the access
rules of readings, audited, paged, in a fixed number of queries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.vitals.services import ReadingInput, readings_record_many
from tests.fhir.conftest import bearer, get, r4b
from tests.fhir.ecg_support import make_ecg
from tests.vitals.conftest import NOW, record

pytestmark = pytest.mark.sqlite
URL = "/fhir/Observation"


def _many(patient: User, count: int, *, kind: str = "heart_rate") -> None:
    items = [
        ReadingInput(
            patient=patient,
            kind=kind,
            values={"heart_rate": 60 + i % 30},
            measured_at=NOW - timedelta(hours=i + 1),
            source="device",
        )
        for i in range(count)
    ]
    readings_record_many(by=patient, items=items)


def _ids(bundle: dict[str, Any]) -> list[str]:
    return [entry["resource"]["id"] for entry in bundle.get("entry", [])]


def test_it_reads_one_reading(client: Client, alice: User) -> None:
    reading = record(alice).reading
    response = get(client, f"{URL}/reading-{reading.pk}", alice)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/fhir+json")
    r4b(response.json())
    assert AuditEvent.objects.filter(action="view", object_type="reading", patient=alice).exists()


def test_it_reads_one_ecg_recording(client: Client, alice: User) -> None:
    recording = make_ecg(alice)
    response = get(client, f"{URL}/ecg-{recording.pk}", alice)
    assert response.status_code == 200
    observation = response.json()
    r4b(observation)
    url = observation["contained"][0]["content"][0]["attachment"]["url"]
    assert url == f"http://testserver/vitals/ecg/{recording.pk}/original/"


def test_bob_reads_his_patients_observations(client: Client, alice: User, bob: User, appointment: Any) -> None:
    reading = record(alice).reading
    recording = make_ecg(alice)
    assert get(client, f"{URL}/reading-{reading.pk}", bob).status_code == 200
    assert get(client, f"{URL}/ecg-{recording.pk}", bob).status_code == 200
    assert get(client, f"{URL}?patient={alice.pk}", bob).status_code == 200


@pytest.mark.parametrize("path", ["reading", "ecg", "search", "nonsense"])
def test_mallory_gets_not_found(client: Client, alice: User, mallory: User, path: str) -> None:
    reading = record(alice).reading
    recording = make_ecg(alice)
    url = {
        "reading": f"{URL}/reading-{reading.pk}",
        "ecg": f"{URL}/ecg-{recording.pk}",
        "search": f"{URL}?patient={alice.pk}",
        "nonsense": f"{URL}/patient-{alice.pk}",
    }[path]
    response = get(client, url, mallory)
    assert response.status_code == 404
    data = response.json()
    r4b(data)
    assert data["issue"][0]["code"] == "not-found"
    assert AuditEvent.objects.filter(action="access_denied", actor=mallory).exists()


def test_another_doctor_gets_not_found(client: Client, alice: User, dave: User, appointment: Any) -> None:
    reading = record(alice).reading
    assert get(client, f"{URL}/reading-{reading.pk}", dave).status_code == 404
    assert get(client, f"{URL}?patient={alice.pk}", dave).status_code == 404


def test_the_clinic_admin_does_not_read_clinical_data(
    client: Client, alice: User, carol: User, appointment: Any
) -> None:
    reading = record(alice).reading
    assert get(client, f"{URL}/reading-{reading.pk}", carol).status_code == 404
    assert get(client, f"{URL}?patient={alice.pk}", carol).status_code == 404


@pytest.mark.parametrize("path", [f"{URL}/reading-1", f"{URL}?patient=1", "/fhir/Patient/1"])
def test_anonymous_callers_get_401(client: Client, db: None, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401
    r4b(response.json())


def test_it_answers_the_session_too(login: Any, alice: User) -> None:
    reading = record(alice).reading
    assert login(alice).get(f"{URL}/reading-{reading.pk}").status_code == 200


def test_it_searches_a_patients_observations_newest_first(client: Client, alice: User) -> None:
    old = record(alice, measured_at=NOW - timedelta(days=3)).reading
    new = record(alice, kind="heart_rate", values={"heart_rate": 70}).reading
    recording = make_ecg(alice)  # two days ago
    response = get(client, f"{URL}?patient={alice.pk}", alice)
    assert response.status_code == 200
    bundle = response.json()
    r4b(bundle)
    assert (bundle["type"], bundle["total"]) == ("searchset", 3)
    assert _ids(bundle) == [f"reading-{new.pk}", f"ecg-{recording.pk}", f"reading-{old.pk}"]
    assert bundle["entry"][0]["fullUrl"] == f"http://testserver/fhir/Observation/reading-{new.pk}"
    event = AuditEvent.objects.filter(action="export", object_type="fhir_observations").get()
    assert event.patient == alice


def test_it_searches_the_callers_own_observations_without_a_patient(client: Client, alice: User) -> None:
    record(alice)
    bundle = get(client, URL, alice).json()
    assert bundle["total"] == 1


def test_a_doctor_must_name_the_patient(client: Client, bob: User) -> None:
    assert get(client, URL, bob).status_code == 400


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("85354-9", ["bp"]),
        ("http://loinc.org|8867-4", ["hr"]),
        ("11524-6", ["ecg"]),
        ("85354-9,8867-4", ["hr", "bp"]),
        ("2093-3", []),
        ("http://snomed.info/sct|85354-9", []),
    ],
)
def test_it_filters_by_code(client: Client, alice: User, code: str, expected: list[str]) -> None:
    bp = record(alice, measured_at=NOW - timedelta(days=3)).reading
    hr = record(alice, kind="heart_rate", values={"heart_rate": 70}).reading
    recording = make_ecg(alice)
    names = {f"reading-{bp.pk}": "bp", f"reading-{hr.pk}": "hr", f"ecg-{recording.pk}": "ecg"}
    bundle = get(client, f"{URL}?patient=Patient/{alice.pk}&code={code}", alice).json()
    assert [names[i] for i in _ids(bundle)] == expected


def test_it_filters_by_category(client: Client, alice: User) -> None:
    record(alice)
    record(alice, kind="glucose", values={"glucose": "6.1"}, unit="mmol/L", context="random")
    make_ecg(alice)
    totals = {
        category: get(client, f"{URL}?patient={alice.pk}&category={category}", alice).json()["total"]
        for category in ("vital-signs", "laboratory", "procedure")
    }
    assert totals == {"vital-signs": 1, "laboratory": 1, "procedure": 1}


def test_it_filters_by_date(client: Client, alice: User) -> None:
    for days in (1, 5, 10):
        record(alice, measured_at=NOW - timedelta(days=days))
    url = f"{URL}?patient={alice.pk}"
    assert get(client, url + "&date=ge2026-11-25", alice).json()["total"] == 2
    assert get(client, url + "&date=lt2026-11-25&date=gt2026-11-20", alice).json()["total"] == 1
    assert get(client, url + "&date=2026-11-30", alice).json()["total"] == 1
    assert get(client, url + "&date=2026-11", alice).json()["total"] == 3
    assert get(client, url + "&date=ge2026-11-30T07:50:00%2B08:00", alice).json()["total"] == 1


@pytest.mark.parametrize("query", ["date=ge2026-13-45", "date=gesoon", "_count=-1", "_count=5000", "_offset=x"])
def test_it_refuses_bad_search_parameters(client: Client, alice: User, query: str) -> None:
    response = get(client, f"{URL}?patient={alice.pk}&{query}", alice)
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_it_pages_with_links(client: Client, alice: User) -> None:
    _many(alice, 7)
    first = get(client, f"{URL}?patient={alice.pk}&_count=3", alice).json()
    r4b(first)
    assert first["total"] == 7 and len(first["entry"]) == 3
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert {"self", "first", "next", "last"} <= links.keys()
    assert "previous" not in links
    second = client.get(links["next"], **bearer(alice)).json()
    assert len(second["entry"]) == 3
    assert not set(_ids(first)) & set(_ids(second))
    last = client.get(links["last"], **bearer(alice)).json()
    assert len(last["entry"]) == 1
    assert parse_qs(urlparse(links["last"]).query)["_offset"] == ["6"]
    assert "next" not in {link["relation"] for link in last["link"]}


def test_it_searches_in_a_fixed_number_of_queries(client: Client, alice: User) -> None:
    headers = bearer(alice)
    _many(alice, 3)
    record(alice, kind="glucose", values={"glucose": 5}, unit="mmol/L", context="random")
    make_ecg(alice)
    client.get(f"{URL}?patient={alice.pk}", **headers)  # the token's "last used" is written once a minute
    with CaptureQueriesContext(connection) as small:
        client.get(f"{URL}?patient={alice.pk}&_count=500", **headers)
    _many(alice, 60, kind="heart_rate")
    for hours in range(1, 6):
        record(
            alice,
            kind="glucose",
            values={"glucose": 99},
            unit="mg/dL",
            context="random",
            measured_at=NOW - timedelta(minutes=hours),
        )
    make_ecg(alice, sha256="f" * 64)
    with CaptureQueriesContext(connection) as large:
        response = client.get(f"{URL}?patient={alice.pk}&_count=500", **headers)
    assert response.json()["total"] > 60
    assert len(large) == len(small)


@pytest.mark.parametrize(
    ("accept", "status", "content_type"),
    [
        ("application/fhir+json", 200, "application/fhir+json"),
        ("application/fhir+json; fhirVersion=4.0", 200, "application/fhir+json"),
        ("application/json", 200, "application/json"),
        ("*/*", 200, "application/fhir+json"),
        ("application/fhir+xml", 406, "application/fhir+json"),
    ],
)
def test_it_negotiates_the_content_type(
    client: Client, alice: User, accept: str, status: int, content_type: str
) -> None:
    reading = record(alice).reading
    response = client.get(f"{URL}/reading-{reading.pk}", HTTP_ACCEPT=accept, **bearer(alice))
    assert response.status_code == status
    assert response["Content-Type"].startswith(content_type)
