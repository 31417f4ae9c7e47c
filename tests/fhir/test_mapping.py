"""Readings and ECG recordings as FHIR Observations, each validated with the R4B models."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from apps.accounts.models import User
from apps.fhir.mapping import ecg_observation, interpretation_code, reading_observation
from tests.fhir.conftest import r4b
from tests.fhir.ecg_support import make_ecg
from tests.vitals.conftest import CRISIS, NOW, record

pytestmark = pytest.mark.sqlite
SITE = "https://telemed.example"


def _codes(concept: dict[str, Any]) -> list[str]:
    return [coding["code"] for coding in concept["coding"]]


def _component(observation: dict[str, Any], code: str) -> dict[str, Any]:
    return next(c for c in observation["component"] if code in _codes(c["code"]))


def test_it_maps_a_blood_pressure_to_the_bp_panel(alice: User) -> None:
    reading = record(alice, note="after a walk").reading
    observation = reading_observation(reading)
    parsed = r4b(observation)
    assert parsed.status == "final"
    assert observation["id"] == f"reading-{reading.pk}"
    assert _codes(observation["code"]) == ["85354-9"]
    assert observation["meta"]["profile"] == ["http://hl7.org/fhir/StructureDefinition/bp"]
    assert observation["category"][0]["coding"][0]["code"] == "vital-signs"
    systolic = _component(observation, "8480-6")["valueQuantity"]
    assert systolic == {"value": 128, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
    assert _component(observation, "8462-4")["valueQuantity"]["value"] == 82
    assert _component(observation, "8867-4")["valueQuantity"]["code"] == "/min"
    assert "valueQuantity" not in observation
    assert observation["effectiveDateTime"] == "2026-12-01T07:50:00+08:00"
    assert observation["subject"] == {"reference": f"Patient/{alice.pk}", "display": "Alice"}
    assert observation["performer"][0]["reference"] == f"Patient/{alice.pk}"
    assert observation["interpretation"][0]["coding"][0]["code"] == "N"
    assert observation["note"] == [{"text": "after a walk"}]
    assert observation["identifier"][0]["value"] == reading.content_hash


def test_it_names_the_doctor_who_entered_a_reading(alice: User, bob: User, appointment: Any) -> None:
    reading = record(alice, by=bob, source="staff").reading
    observation = reading_observation(reading)
    r4b(observation)
    assert observation["performer"][0] == {"reference": f"Practitioner/{bob.pk}", "display": "Bob"}
    assert observation["meta"]["tag"][0]["code"] == "staff"


@pytest.mark.parametrize(
    ("unit", "code", "value"),
    [("mg/dL", "2339-0", 99), ("mmol/L", "15074-8", 5.5)],
)
def test_it_gives_glucose_in_the_patients_unit(alice: User, unit: str, code: str, value: float) -> None:
    reading = record(alice, kind="glucose", values={"glucose": 99}, unit="mg/dL", context="fasting").reading
    observation = reading_observation(reading, glucose_unit=unit)
    r4b(observation)
    assert _codes(observation["code"]) == [code]
    assert observation["valueQuantity"]["value"] == value
    assert observation["valueQuantity"]["code"] == unit
    assert observation["category"][0]["coding"][0]["code"] == "laboratory"
    assert observation["extension"] == [{"url": "urn:telemed:fhir:glucose-context", "valueCode": "fasting"}]


@pytest.mark.parametrize(
    ("kind", "values", "code", "ucum", "value"),
    [
        ("heart_rate", {"heart_rate": 64}, "8867-4", "/min", 64),
        ("spo2", {"spo2": 97}, "2708-6", "%", 97),
        ("temperature", {"temperature": "36.8"}, "8310-5", "Cel", 36.8),
        ("weight", {"weight": "70.25"}, "29463-7", "kg", 70.25),
        ("height", {"height": 170}, "8302-2", "cm", 170),
    ],
)
def test_it_maps_each_kind_with_its_loinc_code_and_ucum_unit(
    alice: User, kind: str, values: dict[str, Any], code: str, ucum: str, value: float
) -> None:
    observation = reading_observation(record(alice, kind=kind, values=values).reading)
    r4b(observation)
    assert _codes(observation["code"])[0] == code
    assert observation["valueQuantity"]["code"] == ucum
    assert observation["valueQuantity"]["value"] == value
    assert observation["category"][0]["coding"][0]["code"] == "vital-signs"


def test_it_adds_the_bmi_to_a_weight(alice: User) -> None:
    record(alice, kind="height", values={"height": 170}, measured_at=NOW - timedelta(days=1))
    observation = reading_observation(record(alice, kind="weight", values={"weight": 72}).reading)
    r4b(observation)
    assert _component(observation, "39156-5")["valueQuantity"] == {
        "value": 24.9,
        "unit": "kg/m2",
        "system": "http://unitsofmeasure.org",
        "code": "kg/m2",
    }


def test_it_interprets_a_crisis_as_critical_high_and_a_level_2_low_as_critical_low(alice: User) -> None:
    crisis = reading_observation(record(alice, values=CRISIS).reading)
    low = reading_observation(
        record(alice, kind="glucose", values={"glucose": "2.5"}, unit="mmol/L", context="random").reading
    )
    assert crisis["interpretation"][0]["coding"][0]["code"] == "HH"
    assert crisis["interpretation"][0]["text"] == "Hypertensive crisis"
    assert low["interpretation"][0]["coding"][0]["code"] == "LL"


@pytest.mark.parametrize(
    ("category", "severity", "code"),
    [
        ("bp_grade_1", "attention", "H"),
        ("spo2_low", "urgent", "L"),
        ("hr_very_fast", "critical", "HH"),
        ("bp_high_normal", "normal", "N"),
        ("ecg_irregular_rr", "urgent", "A"),
        ("ecg_poor_quality", "attention", "IND"),
        ("within_target", "normal", "N"),
        ("below_target", "attention", "L"),
    ],
)
def test_it_chooses_the_v3_interpretation_code(category: str, severity: str, code: str) -> None:
    assert interpretation_code(category=category, severity=severity) == code


def test_it_maps_an_ecg_summary_with_a_private_link_to_the_original(alice: User) -> None:
    recording = make_ecg(alice)
    observation = ecg_observation(recording, site_url=SITE)
    parsed = r4b(observation)
    assert parsed.status == "final"
    assert observation["id"] == f"ecg-{recording.pk}"
    assert _codes(observation["code"]) == ["11524-6"]
    assert _component(observation, "8867-4")["valueQuantity"]["value"] == 75.5
    assert _component(observation, "80404-7")["valueQuantity"] == {
        "value": 51.2,
        "unit": "ms",
        "system": "http://unitsofmeasure.org",
        "code": "ms",
    }
    assert _component(observation, "rr-mean")["valueQuantity"]["value"] == 794.7
    assert _component(observation, "af-screen")["valueBoolean"] is False
    assert _component(observation, "signal-quality")["valueQuantity"]["value"] == 98.0
    assert _component(observation, "beat-count")["valueInteger"] == 2273
    document = observation["contained"][0]
    assert document["resourceType"] == "DocumentReference"
    assert observation["derivedFrom"] == [{"reference": "#original", "display": "100.zip"}]
    url = document["content"][0]["attachment"]["url"]
    assert url == f"{SITE}/vitals/ecg/{recording.pk}/original/"
    assert recording.storage_key not in str(observation)
    assert observation["interpretation"][0]["coding"][0]["code"] == "N"


def test_it_flags_an_irregular_ecg_as_abnormal(alice: User) -> None:
    summary = {**make_ecg(alice).summary}
    summary["af"] = {**summary["af"], "irregular": True, "segments_flagged": 9}
    recording = make_ecg(alice, summary=summary, category="ecg_irregular_rr", severity="urgent")
    observation = ecg_observation(recording, site_url=SITE)
    r4b(observation)
    af = _component(observation, "af-screen")
    assert af["valueBoolean"] is True
    assert af["interpretation"][0]["coding"][0]["code"] == "A"
    assert observation["interpretation"][0]["coding"][0]["code"] == "A"


@pytest.mark.parametrize(("status", "fhir_status"), [("queued", "registered"), ("failed", "cancelled")])
def test_it_maps_an_unanalysed_ecg_without_values(alice: User, status: str, fhir_status: str) -> None:
    recording = make_ecg(alice, status=status, failure_messages={"en": "Not an ECG."} if status == "failed" else {})
    observation = ecg_observation(recording, site_url=SITE)
    r4b(observation)
    assert observation["status"] == fhir_status
    assert "component" not in observation
    assert "dataAbsentReason" in observation
