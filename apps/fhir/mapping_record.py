"""The rest of a patient's record as FHIR R4 resources (plain JSON dicts):
Patient, Appointment, Encounter (an appointment that took place, with its
consult) and Condition (a diagnosis of a signed consult note), and the
Bundles they travel in. docs/fhir.md has the mapping table."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from apps.accounts.models import PatientProfile, Sex, User
from apps.care.models import Diagnosis, DiagnosisStatus
from apps.consults.models import ConsultState
from apps.fhir.mapping import local_iso, patient_reference
from apps.scheduling.models import Appointment, AppointmentStatus, ConsultMode

ICD10_CM = "http://hl7.org/fhir/sid/icd-10-cm"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONTACT_RELATIONSHIP = "http://terminology.hl7.org/CodeSystem/v2-0131"
LANGUAGES = "urn:ietf:bcp:47"
APPOINTMENT_MODE = "urn:telemed:consult-mode"

GENDER = {Sex.FEMALE: "female", Sex.MALE: "male", Sex.OTHER: "other", Sex.UNKNOWN: "unknown"}
LANGUAGE_TAG = {"zh-hans": ("zh-Hans", "简体中文"), "en": ("en", "English")}
APPOINTMENT_STATUS = {
    AppointmentStatus.BOOKED: "booked",
    AppointmentStatus.COMPLETED: "fulfilled",
    AppointmentStatus.NO_SHOW: "noshow",
    AppointmentStatus.CANCELLED: "cancelled",
}


def practitioner_reference(doctor: User) -> dict[str, str]:
    return {"reference": f"Practitioner/{doctor.pk}", "display": doctor.full_name}


def patient_resource(profile: PatientProfile) -> dict[str, Any]:
    user = profile.user
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(user.pk),
        "active": user.is_active,
        "name": [{"use": "official", "text": user.full_name}],
        "gender": GENDER.get(Sex(profile.sex), "unknown"),
    }
    telecom = []
    if user.phone:
        telecom.append({"system": "phone", "value": user.phone, "use": "mobile"})
    if user.email:
        telecom.append({"system": "email", "value": user.email})
    if telecom:
        resource["telecom"] = telecom
    if profile.date_of_birth:
        resource["birthDate"] = profile.date_of_birth.isoformat()
    if profile.address or profile.village:
        address: dict[str, Any] = {"use": "home", "text": ", ".join(p for p in (profile.address, profile.village) if p)}
        if profile.address:
            address["line"] = [profile.address]
        if profile.village:
            address["district"] = profile.village
        resource["address"] = [address]
    if profile.emergency_contact_name or profile.emergency_contact_phone:
        contact: dict[str, Any] = {
            "relationship": [
                {"coding": [{"system": CONTACT_RELATIONSHIP, "code": "C", "display": "Emergency Contact"}]}
            ]
        }
        if profile.emergency_contact_name:
            contact["name"] = {"text": profile.emergency_contact_name}
        if profile.emergency_contact_phone:
            contact["telecom"] = [{"system": "phone", "value": profile.emergency_contact_phone}]
        resource["contact"] = [contact]
    tag, display = LANGUAGE_TAG.get(user.language, (user.language, user.language))
    resource["communication"] = [
        {"language": {"coding": [{"system": LANGUAGES, "code": tag, "display": display}]}, "preferred": True}
    ]
    return resource


def _mode(appointment: Appointment) -> dict[str, Any]:
    label = str(ConsultMode(appointment.mode).label) if appointment.mode in ConsultMode.values else appointment.mode
    return {"coding": [{"system": APPOINTMENT_MODE, "code": appointment.mode, "display": label}], "text": label}


def appointment_resource(appointment: Appointment) -> dict[str, Any]:
    patient = appointment.patient
    status = APPOINTMENT_STATUS.get(AppointmentStatus(appointment.status), "booked")
    participant_status = "declined" if status == "cancelled" else "accepted"
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": str(appointment.pk),
        "status": status,
        "serviceType": [_mode(appointment)],
        "start": local_iso(appointment.starts_at, patient),
        "end": local_iso(appointment.ends_at, patient),
        "minutesDuration": max(1, int((appointment.ends_at - appointment.starts_at).total_seconds() // 60)),
        "created": appointment.created_at.isoformat(),
        "participant": [
            {"actor": patient_reference(patient), "required": "required", "status": participant_status},
            {"actor": practitioner_reference(appointment.doctor), "required": "required", "status": participant_status},
            {"actor": {"display": appointment.clinic.name}, "required": "information-only", "status": "accepted"},
        ],
    }
    if appointment.reason:
        resource["description"] = appointment.reason
        resource["reasonCode"] = [{"text": appointment.reason}]
    if status == "cancelled" and appointment.cancel_reason:
        resource["cancelationReason"] = {"text": appointment.cancel_reason}
    return resource


def encounter_resource(appointment: Appointment) -> dict[str, Any]:
    """An appointment that took place (completed, or its consult started)."""
    patient = appointment.patient
    consult = getattr(appointment, "consult", None)
    in_person = appointment.mode == ConsultMode.IN_PERSON
    encounter_class = (
        {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"}
        if in_person
        else {"system": ACT_CODE, "code": "VR", "display": "virtual"}
    )
    started = consult.started_at if consult is not None and consult.started_at else appointment.starts_at
    ended = consult.ended_at if consult is not None and consult.ended_at else None
    if ended is None and appointment.status == AppointmentStatus.COMPLETED:
        ended = appointment.completed_at or appointment.ends_at
    in_progress = consult is not None and consult.state == ConsultState.IN_PROGRESS and ended is None
    period: dict[str, str] = {"start": local_iso(started, patient)}
    if ended is not None and ended >= started:
        period["end"] = local_iso(ended, patient)
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": str(appointment.pk),
        "status": "in-progress" if in_progress else "finished",
        "class": encounter_class,
        "serviceType": _mode(appointment),
        "subject": patient_reference(patient),
        "participant": [{"individual": practitioner_reference(appointment.doctor)}],
        "appointment": [{"reference": f"Appointment/{appointment.pk}"}],
        "period": period,
        "serviceProvider": {"display": appointment.clinic.name},
    }
    if appointment.reason:
        resource["reasonCode"] = [{"text": appointment.reason}]
    return resource


def condition_resource(diagnosis: Diagnosis) -> dict[str, Any]:
    patient = diagnosis.patient
    resolved = diagnosis.status == DiagnosisStatus.RESOLVED
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": str(diagnosis.pk),
        "clinicalStatus": {
            "coding": [
                {
                    "system": CONDITION_CLINICAL,
                    "code": "resolved" if resolved else "active",
                    "display": "Resolved" if resolved else "Active",
                }
            ]
        },
        "verificationStatus": {
            "coding": [{"system": CONDITION_VERIFICATION, "code": "confirmed", "display": "Confirmed"}]
        },
        "category": [
            {
                "coding": [
                    {"system": CONDITION_CATEGORY, "code": "encounter-diagnosis", "display": "Encounter Diagnosis"}
                ]
            }
        ],
        "code": {
            "coding": [{"system": ICD10_CM, "code": diagnosis.code, "display": diagnosis.description}],
            "text": diagnosis.description,
        },
        "subject": patient_reference(patient),
        "encounter": {"reference": f"Encounter/{diagnosis.note.appointment_id}"},
        "recordedDate": local_iso(diagnosis.recorded_at, patient),
        "recorder": practitioner_reference(diagnosis.note.author),
    }
    if diagnosis.is_primary:
        resource["note"] = [{"text": "Primary diagnosis of the consult"}]
    if diagnosis.onset_date:
        resource["onsetDateTime"] = diagnosis.onset_date.isoformat()
    if resolved and diagnosis.resolved_at:
        resource["abatementDateTime"] = local_iso(diagnosis.resolved_at, patient)
    return resource


# --- Bundles ------------------------------------------------------------------------------


def bundle_entry(resource: dict[str, Any], *, base_url: str, search_mode: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"fullUrl": f"{base_url.rstrip('/')}/{resource['resourceType']}/{resource['id']}"}
    entry["resource"] = resource
    if search_mode:
        entry["search"] = {"mode": search_mode}
    return entry


def searchset(
    resources: Iterable[dict[str, Any]], *, base_url: str, total: int, links: list[dict[str, str]]
) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": [bundle_entry(resource, base_url=base_url, search_mode="match") for resource in resources],
    }
