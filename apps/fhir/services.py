"""Recording FHIR Observations as readings: the patients are looked up with
the access rule of reading entry, and the readings recorded through the
vitals services (plausibility, time, duplicates, flags, alerts and audit
live there, once). Refusals become ``FhirError`` (an OperationOutcome)."""

from __future__ import annotations

from collections.abc import Sequence

from django.http import Http404
from django.utils.translation import gettext as _

from apps.accounts.models import User
from apps.fhir.outcome import FhirError, Issue
from apps.fhir.parsing import ParsedObservation
from apps.vitals.selectors import patient_get_for_reading_entry
from apps.vitals.services import BatchRefused, ReadingInput, ReadingRefused, Recorded, readings_record_many

# Where each field of a reading lives in the Observation (FHIRPath below the resource).
FIELD_PATHS = {
    "systolic": "component",
    "diastolic": "component",
    "pulse": "component",
    "measured_at": "effectiveDateTime",
    "note": "note",
    "context": "extension",
    "unit": "valueQuantity.code",
    "source": "meta.tag",
    "kind": "code",
}
MAX_ENTRIES = 1000


def _path(root: str, field: str) -> str:
    if field == "__all__":
        return root
    return f"{root}.{FIELD_PATHS.get(field, 'valueQuantity')}"


def _issues(root: str, errors: dict[str, list[str]]) -> list[Issue]:
    return [
        Issue("processing", f"{_path(root, field)}: {message}", (_path(root, field),))
        for field, messages in errors.items()
        for message in messages
    ]


def _patients(*, by: User, observations: Sequence[ParsedObservation], roots: Sequence[str]) -> list[User]:
    """Each observation's patient, looked up once each: "not found" for one
    ``by`` may not enter readings for (audited by the selector)."""
    found: dict[int, User] = {}
    patients: list[User] = []
    for observation, root in zip(observations, roots, strict=True):
        patient_id = observation.patient_id
        if patient_id is None:
            if not hasattr(by, "patient_profile"):
                raise FhirError(
                    400,
                    [
                        Issue(
                            "required",
                            f"{root}.subject: " + _("Say whose reading it is: Patient/<id>."),
                            (f"{root}.subject",),
                        )
                    ],
                )
            patient_id = by.pk
        if patient_id not in found:
            try:
                found[patient_id] = patient_get_for_reading_entry(user=by, patient_id=patient_id)
            except Http404:
                raise FhirError(
                    404,
                    [Issue("not-found", _("Patient/%(id)s was not found.") % {"id": patient_id}, (f"{root}.subject",))],
                ) from None
        patients.append(found[patient_id])
    return patients


def observations_record(
    *, by: User, observations: Sequence[ParsedObservation], roots: Sequence[str] | None = None
) -> list[Recorded]:
    """Record the readings of ``observations``, all or nothing (``roots``:
    each one's FHIRPath, for the issues). A reading stored before is not an
    error (``Recorded.created`` is False)."""
    roots = list(roots or ["Observation"] * len(observations))
    if len(observations) > MAX_ENTRIES:
        raise FhirError(413, [Issue("too-costly", _("Send at most %(n)s observations at once.") % {"n": MAX_ENTRIES})])
    patients = _patients(by=by, observations=observations, roots=roots)
    items = [
        ReadingInput(
            patient=patient,
            kind=observation.kind,
            values=observation.values,
            measured_at=observation.measured_at,
            source=observation.source,
            note=observation.note,
            context=observation.context,
            unit=observation.unit,
        )
        for observation, patient in zip(observations, patients, strict=True)
    ]
    try:
        return readings_record_many(by=by, items=items)
    except ReadingRefused as refused:
        if refused.code == "not_found":
            raise FhirError(404, [Issue("not-found", _("The patient was not found."))]) from None
        if refused.code == "no_consent":
            raise FhirError(403, [Issue("forbidden", refused.message)]) from None
        raise FhirError(422, _issues(roots[0], refused.errors)) from None
    except BatchRefused as refused:
        issues = [issue for index, errors in sorted(refused.errors.items()) for issue in _issues(roots[index], errors)]
        raise FhirError(422, issues) from None
