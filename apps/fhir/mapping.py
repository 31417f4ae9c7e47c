"""Readings and ECG recordings as FHIR R4 Observations (plain JSON dicts,
validated in the tests with the ``fhir.resources`` R4B models).

Readings already carry LOINC codes and UCUM units (apps/vitals/kinds.py),
so this is a mapping, not a translation: each kind is one Observation of
the FHIR vital-signs profile (blood pressure as the 85354-9 panel with its
systolic and diastolic components), glucose in the patient's unit (2339-0
in mg/dL, 15074-8 in mmol/L). The flag's severity and direction become a
v3 ObservationInterpretation code. An ECG recording is one Observation
(11524-6 EKG study) whose components are its analysis, with a contained
DocumentReference pointing at the original file's private, access-checked
download URL. docs/fhir.md has the whole table.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.urls import reverse

from apps.accounts.models import User
from apps.vitals.flags import Severity, category_label
from apps.vitals.kinds import (
    BLOOD_PRESSURE,
    GLUCOSE,
    HEART_RATE,
    HEIGHT,
    MG_DL,
    MMOL_L,
    SPO2,
    TEMPERATURE,
    WEIGHT,
    Kind,
    glucose_display,
    kind_get,
    quantize,
)
from apps.vitals.models import EcgRecording, EcgStatus, Reading

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
# Our own code systems, for what has no standard code.
ECG_CODES = "urn:telemed:ecg"
SOURCE_TAGS = "urn:telemed:reading-source"
CONTENT_HASH = "urn:telemed:reading-content-sha256"
FILE_SHA256 = "urn:telemed:file-sha256"
GLUCOSE_CONTEXT_URL = "urn:telemed:fhir:glucose-context"

GLUCOSE_MG_DL_LOINC = "2339-0"
GLUCOSE_MMOL_L_LOINC = "15074-8"
SPO2_PULSE_OXIMETRY_LOINC = "59408-5"
ECG_LOINC = "11524-6"
BMI_LOINC = "39156-5"
HRV_SDNN_LOINC = "80404-7"

DISPLAY = {
    "85354-9": "Blood pressure panel with all children optional",
    "8480-6": "Systolic blood pressure",
    "8462-4": "Diastolic blood pressure",
    "8867-4": "Heart rate",
    "2708-6": "Oxygen saturation in Arterial blood",
    SPO2_PULSE_OXIMETRY_LOINC: "Oxygen saturation in Arterial blood by Pulse oximetry",
    "8310-5": "Body temperature",
    "29463-7": "Body weight",
    "8302-2": "Body height",
    BMI_LOINC: "Body mass index (BMI) [Ratio]",
    GLUCOSE_MG_DL_LOINC: "Glucose [Mass/volume] in Blood",
    GLUCOSE_MMOL_L_LOINC: "Glucose [Moles/volume] in Blood",
    ECG_LOINC: "EKG study",
    HRV_SDNN_LOINC: "R-R interval.standard deviation (Heart rate variability)",
}

# The base FHIR vital-signs profile and the one of each kind (glucose is a
# laboratory observation in FHIR: no vital-signs profile).
VITALSIGNS_PROFILE = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
PROFILES = {
    BLOOD_PRESSURE.code: "http://hl7.org/fhir/StructureDefinition/bp",
    HEART_RATE.code: "http://hl7.org/fhir/StructureDefinition/heartrate",
    SPO2.code: "http://hl7.org/fhir/StructureDefinition/oxygensat",
    TEMPERATURE.code: "http://hl7.org/fhir/StructureDefinition/bodytemp",
    WEIGHT.code: "http://hl7.org/fhir/StructureDefinition/bodyweight",
    HEIGHT.code: "http://hl7.org/fhir/StructureDefinition/bodyheight",
}

# A flag's direction: low categories, and those that are neither high nor low.
LOW_CATEGORIES = frozenset(
    {
        "bp_low",
        "bp_very_low",
        "glucose_low_level_1",
        "glucose_low_level_2",
        "spo2_very_low",
        "spo2_low",
        "spo2_borderline",
        "hr_very_slow",
        "hr_slow_marked",
        "hr_slow",
        "temp_hypothermia_severe",
        "temp_hypothermia",
        "temp_low",
        "bmi_underweight",
        "below_target",
    }
)
UNDIRECTED_CATEGORIES = frozenset({"ecg_irregular_rr", "ecg_poor_quality", "ecg_no_beats", "weight", "recorded"})
INTERPRETATION_DISPLAY = {
    "N": "Normal",
    "H": "High",
    "HH": "Critical high",
    "L": "Low",
    "LL": "Critical low",
    "A": "Abnormal",
    "AA": "Critical abnormal",
    "IND": "Indeterminate",
}


def interpretation_code(*, category: str, severity: str) -> str:
    """The v3 ObservationInterpretation code of a flag: N when normal, H/L
    (HH/LL when critical) by the category's direction, A/AA otherwise; IND
    for an ECG that could not be judged."""
    if category in {"ecg_poor_quality", "ecg_no_beats"}:
        return "IND"
    if severity == Severity.NORMAL or category in {"within_target", "weight", "recorded"}:
        return "N"
    critical = severity == Severity.CRITICAL
    if category in UNDIRECTED_CATEGORIES:
        return "AA" if critical else "A"
    if category in LOW_CATEGORIES:
        return "LL" if critical else "L"
    return "HH" if critical else "H"


def _interpretation(*, category: str, severity: str) -> list[dict[str, Any]]:
    code = interpretation_code(category=category, severity=severity)
    return [
        {
            "coding": [{"system": INTERPRETATION, "code": code, "display": INTERPRETATION_DISPLAY[code]}],
            "text": category_label(category),
        }
    ]


def _number(value: Decimal | float | int) -> int | float:
    number = Decimal(str(value))
    return int(number) if number == number.to_integral_value() else float(number)


def _loinc(code: str, *more: str) -> dict[str, Any]:
    return {
        "coding": [{"system": LOINC, "code": c, "display": DISPLAY[c]} for c in (code, *more)],
        "text": DISPLAY[code],
    }


def _quantity(value: Decimal | float | int, ucum: str, unit: str | None = None) -> dict[str, Any]:
    return {"value": _number(value), "unit": unit or ucum, "system": UCUM, "code": ucum}


def _category(code: str, display: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": OBSERVATION_CATEGORY, "code": code, "display": display}], "text": display}]


VITAL_SIGNS = _category("vital-signs", "Vital Signs")
LABORATORY = _category("laboratory", "Laboratory")
PROCEDURE = _category("procedure", "Procedure")


def local_iso(moment: datetime, user: User) -> str:
    """``moment`` as ISO 8601 with the offset of ``user``'s time zone."""
    try:
        zone = zoneinfo.ZoneInfo(user.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    return moment.astimezone(zone).isoformat()


def patient_reference(patient: User) -> dict[str, str]:
    return {"reference": f"Patient/{patient.pk}", "display": patient.full_name}


def person_reference(person: User, *, patient: User) -> dict[str, str]:
    """Who entered or performed something: the patient, or a member of staff."""
    if person.pk == patient.pk:
        return patient_reference(patient)
    return {"reference": f"Practitioner/{person.pk}", "display": person.full_name}


def reading_observation_id(reading_id: int) -> str:
    return f"reading-{reading_id}"


def ecg_observation_id(recording_id: int) -> str:
    return f"ecg-{recording_id}"


def glucose_code_for(unit: str) -> str:
    return GLUCOSE_MG_DL_LOINC if unit == MG_DL else GLUCOSE_MMOL_L_LOINC


def _glucose_value(value_mmol_l: Decimal, unit: str) -> dict[str, Any]:
    if unit == MG_DL:
        return _quantity(glucose_display(value_mmol_l, MG_DL), MG_DL)
    return _quantity(quantize(value_mmol_l, 2), MMOL_L)


def _component(code: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"code": _loinc(code), "valueQuantity": value}


def _reading_values(reading: Reading, kind: Kind, glucose_unit: str) -> dict[str, Any]:
    """The value[x] or components of a reading."""
    numbers = reading.numbers
    if kind is BLOOD_PRESSURE:
        components = [
            _component(f.loinc, _quantity(numbers[f.name], f.ucum, "mmHg" if f.ucum == "mm[Hg]" else None))
            for f in kind.fields
            if f.name in numbers
        ]
        return {"component": components}
    if kind is GLUCOSE:
        return {"valueQuantity": _glucose_value(numbers["glucose"], glucose_unit)}
    value_field = kind.fields[0]
    result: dict[str, Any] = {"valueQuantity": _quantity(numbers[value_field.name], value_field.ucum)}
    for derived in kind.derived:
        if derived.name in numbers:
            result.setdefault("component", []).append(
                _component(derived.loinc, _quantity(numbers[derived.name], derived.ucum))
            )
    return result


def reading_observation(reading: Reading, *, glucose_unit: str = MMOL_L) -> dict[str, Any]:
    """One reading as a FHIR Observation. ``reading.patient`` and
    ``reading.entered_by`` should be loaded with it (select_related)."""
    kind = kind_get(reading.kind)
    patient = reading.patient
    if kind is GLUCOSE:
        code = _loinc(glucose_code_for(glucose_unit))
        category = LABORATORY
        profiles: list[str] = []
    elif kind is SPO2:
        code = _loinc(kind.loinc, SPO2_PULSE_OXIMETRY_LOINC)
        category = VITAL_SIGNS
        profiles = [PROFILES[kind.code]]
    else:
        code = _loinc(kind.loinc)
        category = VITAL_SIGNS
        profiles = [PROFILES.get(kind.code, VITALSIGNS_PROFILE)]
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": reading_observation_id(reading.pk),
        "meta": {
            **({"profile": profiles} if profiles else {}),
            "tag": [{"system": SOURCE_TAGS, "code": reading.source, "display": str(reading.get_source_display())}],
        },
        "identifier": [{"system": CONTENT_HASH, "value": reading.content_hash}],
        "status": "final",
        "category": category,
        "code": code,
        "subject": patient_reference(patient),
        "effectiveDateTime": local_iso(reading.measured_at, patient),
        "issued": reading.created_at.isoformat(),
        "performer": [person_reference(reading.entered_by, patient=patient)],
    }
    if reading.context:
        observation["extension"] = [{"url": GLUCOSE_CONTEXT_URL, "valueCode": reading.context}]
    observation.update(_reading_values(reading, kind, glucose_unit))
    observation["interpretation"] = _interpretation(category=reading.category, severity=reading.severity)
    if reading.note:
        observation["note"] = [{"text": reading.note}]
    return observation


# --- ECG recordings ---------------------------------------------------------------

ECG_STATUS = {
    EcgStatus.QUEUED: "registered",
    EcgStatus.ANALYSING: "registered",
    EcgStatus.DONE: "final",
    EcgStatus.FAILED: "cancelled",
}
# What each of our own ECG codes means (code → display).
ECG_COMPONENTS = {
    "heart-rate-min": "Lowest heart rate",
    "heart-rate-max": "Highest heart rate",
    "beat-count": "Beats detected",
    "duration": "Duration of the recording",
    "rr-mean": "Mean R-R interval",
    "rr-min": "Shortest R-R interval",
    "rr-max": "Longest R-R interval",
    "hrv-rmssd": "RMSSD of R-R intervals",
    "hrv-pnn50": "pNN50 of R-R intervals",
    "af-screen": "R-R irregularity (possible atrial fibrillation; a screening hint, not a diagnosis)",
    "signal-quality": "Signal quality index (share of acceptable 10 s windows)",
    "signal-quality-level": "Signal quality",
}


def _ecg_code(code: str) -> dict[str, Any]:
    return {
        "coding": [{"system": ECG_CODES, "code": code, "display": ECG_COMPONENTS[code]}],
        "text": ECG_COMPONENTS[code],
    }


def _ecg_quantity(code: str, value: Any, ucum: str, unit: str | None = None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"code": _ecg_code(code), "valueQuantity": _quantity(round(float(value), 4), ucum, unit)}


def _ecg_components(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    heart_rate = summary.get("heart_rate") or {}
    rr = summary.get("rr") or {}
    hrv = summary.get("hrv") or {}
    af = summary.get("af") or {}
    quality = summary.get("quality") or {}
    components: list[dict[str, Any] | None] = []
    if heart_rate.get("mean_bpm") is not None:
        components.append(_component("8867-4", _quantity(round(float(heart_rate["mean_bpm"]), 1), "/min")))
    components += [
        _ecg_quantity("heart-rate-min", heart_rate.get("min_bpm"), "/min"),
        _ecg_quantity("heart-rate-max", heart_rate.get("max_bpm"), "/min"),
    ]
    if summary.get("beat_count") is not None:
        components.append({"code": _ecg_code("beat-count"), "valueInteger": int(summary["beat_count"])})
    components += [
        _ecg_quantity("duration", summary.get("duration_s"), "s"),
        _ecg_quantity("rr-mean", rr.get("mean_ms"), "ms"),
        _ecg_quantity("rr-min", rr.get("min_ms"), "ms"),
        _ecg_quantity("rr-max", rr.get("max_ms"), "ms"),
    ]
    if hrv.get("sdnn_ms") is not None:
        components.append(_component(HRV_SDNN_LOINC, _quantity(round(float(hrv["sdnn_ms"]), 4), "ms")))
    components += [
        _ecg_quantity("hrv-rmssd", hrv.get("rmssd_ms"), "ms"),
        _ecg_quantity("hrv-pnn50", hrv.get("pnn50_pct"), "%"),
    ]
    if af:
        af_component: dict[str, Any] = {"code": _ecg_code("af-screen")}
        if af.get("irregular") is None:
            af_component["dataAbsentReason"] = {
                "coding": [{"system": DATA_ABSENT, "code": "not-performed", "display": "Not Performed"}],
                "text": str(af.get("assessment") or ""),
            }
        else:
            af_component["valueBoolean"] = bool(af["irregular"])
            if af["irregular"]:
                af_component["interpretation"] = [
                    {"coding": [{"system": INTERPRETATION, "code": "A", "display": "Abnormal"}]}
                ]
        components.append(af_component)
    if quality.get("index") is not None:
        components.append(_ecg_quantity("signal-quality", float(quality["index"]) * 100, "%"))
    if quality.get("level"):
        components.append({"code": _ecg_code("signal-quality-level"), "valueString": str(quality["level"])})
    return [component for component in components if component is not None]


def ecg_original_url(recording: EcgRecording, *, site_url: str) -> str:
    """The original file's download address: the private view that checks
    access on every request (never a public storage URL)."""
    return site_url.rstrip("/") + reverse("vitals:ecg_original", args=[recording.pk])


def ecg_document(recording: EcgRecording, *, site_url: str) -> dict[str, Any]:
    """The original file as a DocumentReference (contained in the ECG's Observation)."""
    return {
        "resourceType": "DocumentReference",
        "id": "original",
        "identifier": [{"system": FILE_SHA256, "value": recording.sha256}],
        "status": "current",
        "type": _loinc(ECG_LOINC),
        "subject": patient_reference(recording.patient),
        "date": recording.created_at.isoformat(),
        "author": [person_reference(recording.uploaded_by, patient=recording.patient)],
        "description": recording.get_file_format_display(),
        "content": [
            {
                "attachment": {
                    "contentType": "application/octet-stream",
                    "url": ecg_original_url(recording, site_url=site_url),
                    "size": recording.size_bytes,
                    "title": recording.original_name,
                    "creation": recording.created_at.isoformat(),
                }
            }
        ],
    }


def ecg_observation(recording: EcgRecording, *, site_url: str) -> dict[str, Any]:
    """An ECG recording and its analysis as a FHIR Observation. Load
    ``patient`` and ``uploaded_by`` with it (select_related)."""
    patient = recording.patient
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": ecg_observation_id(recording.pk),
        "contained": [ecg_document(recording, site_url=site_url)],
        "identifier": [{"system": FILE_SHA256, "value": recording.sha256}],
        "status": ECG_STATUS.get(EcgStatus(recording.status), "registered"),
        "category": PROCEDURE,
        "code": _loinc(ECG_LOINC),
        "subject": patient_reference(patient),
        "effectiveDateTime": local_iso(recording.recorded_at or recording.created_at, patient),
        "performer": [person_reference(recording.uploaded_by, patient=patient)],
        "derivedFrom": [{"reference": "#original", "display": recording.original_name}],
    }
    if recording.analysed_at is not None:
        observation["issued"] = recording.analysed_at.isoformat()
    if recording.lead:
        observation["bodySite"] = {"text": recording.lead}
    summary = recording.summary or {}
    if recording.status == EcgStatus.DONE and summary:
        if recording.category:
            observation["interpretation"] = _interpretation(
                category=recording.category, severity=recording.severity or Severity.NORMAL
            )
        observation["component"] = _ecg_components(summary)
        detector = summary.get("detector")
        if detector:
            observation["method"] = {"text": f"R peaks: {detector}"}
    elif recording.status == EcgStatus.FAILED:
        observation["dataAbsentReason"] = {
            "coding": [{"system": DATA_ABSENT, "code": "error", "display": "Error"}],
            "text": recording.failure_message,
        }
    else:
        observation["dataAbsentReason"] = {
            "coding": [{"system": DATA_ABSENT, "code": "temp-unknown", "display": "Temporarily Unknown"}],
            "text": str(recording.get_status_display()),
        }
    return observation
