"""A patient's whole record as one FHIR Bundle: what
``GET /fhir/Patient/<id>/$everything`` answers and what the patient
downloads from their profile page."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from apps.fhir.mapping import ecg_observation, reading_observation
from apps.fhir.mapping_record import (
    appointment_resource,
    bundle_entry,
    condition_resource,
    encounter_resource,
    patient_resource,
)
from apps.fhir.selectors import PatientRecord
from apps.vitals.selectors import glucose_unit_for


def record_resources(record: PatientRecord, *, site_url: str) -> list[dict[str, Any]]:
    """Patient first, then Observations (readings, then ECG recordings),
    Appointments, Encounters and Conditions."""
    glucose_unit = glucose_unit_for(user=record.patient)
    resources: list[dict[str, Any]] = [patient_resource(record.profile)]
    resources += [reading_observation(reading, glucose_unit=glucose_unit) for reading in record.readings]
    resources += [ecg_observation(recording, site_url=site_url) for recording in record.recordings]
    resources += [appointment_resource(appointment) for appointment in record.appointments]
    resources += [encounter_resource(appointment) for appointment in record.encounters]
    resources += [condition_resource(diagnosis) for diagnosis in record.conditions]
    return resources


def record_bundle(
    record: PatientRecord, *, base_url: str, site_url: str, bundle_type: str = "searchset"
) -> dict[str, Any]:
    """The record as a Bundle: a searchset ($everything; the Patient is the
    match, the rest included) or a collection (the download)."""
    resources = record_resources(record, site_url=site_url)
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": bundle_type}
    if bundle_type == "searchset":
        bundle["total"] = len(resources)
        bundle["entry"] = [
            bundle_entry(resource, base_url=base_url, search_mode="match" if index == 0 else "include")
            for index, resource in enumerate(resources)
        ]
    else:
        bundle["timestamp"] = timezone.now().isoformat()
        bundle["entry"] = [bundle_entry(resource, base_url=base_url) for resource in resources]
    return bundle
