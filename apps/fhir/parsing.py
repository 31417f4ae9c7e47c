"""FHIR input: an Observation (as parsed by ``fhir.resources`` R4B) of a
vital-signs LOINC code becomes a ``ReadingInput`` for the vitals services,
which check plausibility, the time, duplicates and access, and flag it.
Here only the shape: the code, the unit (converted where that is exact:
[degF] → Cel, [lb_av] and g → kg, [in_i] and m → cm; glucose stays in
mg/dL or mmol/L, which the service takes), the time with its offset, the
subject and the source. Anything else is refused with an Issue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from apps.fhir.mapping import (
    GLUCOSE_CONTEXT_URL,
    GLUCOSE_MG_DL_LOINC,
    GLUCOSE_MMOL_L_LOINC,
    LOINC,
    SOURCE_TAGS,
    SPO2_PULSE_OXIMETRY_LOINC,
    UCUM,
)
from apps.fhir.outcome import FhirError, Issue
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
    GlucoseContext,
    Kind,
)
from apps.vitals.models import Source

ACCEPTED_STATUSES = frozenset({"final", "amended", "corrected"})

# LOINC code of the Observation → kind. Glucose: the unit decides mg/dL or mmol/L.
KIND_OF_CODE: dict[str, Kind] = {
    BLOOD_PRESSURE.loinc: BLOOD_PRESSURE,
    HEART_RATE.loinc: HEART_RATE,
    SPO2.loinc: SPO2,
    SPO2_PULSE_OXIMETRY_LOINC: SPO2,
    TEMPERATURE.loinc: TEMPERATURE,
    WEIGHT.loinc: WEIGHT,
    "3141-9": WEIGHT,  # Body weight Measured
    HEIGHT.loinc: HEIGHT,
    GLUCOSE_MG_DL_LOINC: GLUCOSE,
    GLUCOSE_MMOL_L_LOINC: GLUCOSE,
    "41653-7": GLUCOSE,  # Glucose [Mass/volume] in Capillary blood by Glucometer
    "14743-9": GLUCOSE,  # Glucose [Moles/volume] in Capillary blood by Glucometer
}
BP_COMPONENTS = {"8480-6": "systolic", "8462-4": "diastolic", "8867-4": "pulse"}

# UCUM code (or a unit people write) → (canonical UCUM code, factor, offset):
# canonical = value * factor + offset.
Conversion = tuple[str, Decimal, Decimal]
_ONE, _ZERO = Decimal(1), Decimal(0)
UNITS: dict[str, dict[str, Conversion]] = {
    BLOOD_PRESSURE.code: {"mm[Hg]": ("mm[Hg]", _ONE, _ZERO), "mmHg": ("mm[Hg]", _ONE, _ZERO)},
    HEART_RATE.code: {
        "/min": ("/min", _ONE, _ZERO),
        "{beats}/min": ("/min", _ONE, _ZERO),
        "{beat}/min": ("/min", _ONE, _ZERO),
    },
    SPO2.code: {"%": ("%", _ONE, _ZERO)},
    TEMPERATURE.code: {
        "Cel": ("Cel", _ONE, _ZERO),
        "[degF]": ("Cel", Decimal(5) / Decimal(9), Decimal(-32) * Decimal(5) / Decimal(9)),
    },
    WEIGHT.code: {
        "kg": ("kg", _ONE, _ZERO),
        "g": ("kg", Decimal("0.001"), _ZERO),
        "[lb_av]": ("kg", Decimal("0.45359237"), _ZERO),
    },
    HEIGHT.code: {
        "cm": ("cm", _ONE, _ZERO),
        "m": ("cm", Decimal(100), _ZERO),
        "[in_i]": ("cm", Decimal("2.54"), _ZERO),
    },
    GLUCOSE.code: {MMOL_L: (MMOL_L, _ONE, _ZERO), MG_DL: (MG_DL, _ONE, _ZERO)},
}


@dataclass(frozen=True)
class ParsedObservation:
    """What a reading needs, before the patient is looked up."""

    patient_id: int | None  # None: the caller
    kind: str
    values: dict[str, Decimal]
    unit: str  # glucose only
    context: str
    measured_at: datetime
    source: str
    note: str


def _refuse(code: str, message: str, path: str) -> FhirError:
    return FhirError(400, [Issue(code, f"{path}: {message}", (path,))])


def _loinc_codes(concept: Any) -> list[str]:
    codings = getattr(concept, "coding", None) or []
    return [c.code for c in codings if c.code and (c.system or "").rstrip("/") == LOINC]


def _kind(observation: Any, root: str) -> Kind:
    codes = _loinc_codes(observation.code)
    if not codes:
        raise _refuse("code-invalid", _("Give a LOINC code (system http://loinc.org)."), f"{root}.code")
    for code in codes:
        if code in KIND_OF_CODE:
            return KIND_OF_CODE[code]
    raise FhirError(
        422,
        [
            Issue(
                "not-supported",
                f"{root}.code: "
                + _("LOINC code %(codes)s is not a kind of reading this server takes.") % {"codes": ", ".join(codes)},
                (f"{root}.code",),
            )
        ],
    )


def _unit_of(quantity: Any) -> str:
    system = (quantity.system or "").rstrip("/")
    if system and system != UCUM:
        return ""
    return str(quantity.code or quantity.unit or "")


def _value(quantity: Any, kind: Kind, path: str) -> tuple[Decimal, str]:
    """A quantity in the kind's canonical unit (glucose: in its own unit, and that unit)."""
    if quantity is None or quantity.value is None:
        raise _refuse("required", _("Give the value as a valueQuantity."), path)
    if quantity.comparator:
        raise _refuse("value", _("Give the measured value itself, without a comparator (<, >)."), f"{path}.comparator")
    unit = _unit_of(quantity)
    conversion = UNITS[kind.code].get(unit)
    if conversion is None:
        known = ", ".join(sorted(UNITS[kind.code]))
        raise _refuse(
            "value",
            _("Unit %(unit)s is not one this server takes for this code (UCUM: %(known)s).")
            % {"unit": unit or "—", "known": known},
            f"{path}.code",
        )
    target, factor, offset = conversion
    value = Decimal(str(quantity.value)) * factor + offset
    return value, target


def _moment(observation: Any, root: str) -> datetime:
    moment = observation.effectiveDateTime or observation.effectiveInstant
    if not isinstance(moment, datetime):
        raise _refuse(
            "required",
            _("Give effectiveDateTime with a time and its offset, e.g. 2026-11-29T08:30:00+08:00."),
            f"{root}.effectiveDateTime",
        )
    if moment.tzinfo is None:  # pragma: no cover - the FHIR parser wants the offset already
        raise _refuse("value", _("Give the time with its time zone."), f"{root}.effectiveDateTime")
    return moment


def _patient_id(observation: Any, root: str) -> int | None:
    subject = observation.subject
    if subject is None:
        return None
    reference = str(subject.reference or "")
    parts = reference.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == "Patient" and parts[-1].isdigit():
        return int(parts[-1])
    raise _refuse("value", _("The subject must be a reference to a patient: Patient/<id>."), f"{root}.subject")


def _source(observation: Any) -> str:
    tags = (observation.meta.tag or []) if observation.meta is not None else []
    for tag in tags:
        if tag.system == SOURCE_TAGS and tag.code in {Source.API, Source.DEVICE}:
            return str(tag.code)
    return Source.DEVICE if observation.device is not None else Source.API


def _context(observation: Any, root: str) -> str:
    for extension in observation.extension or []:
        if extension.url == GLUCOSE_CONTEXT_URL:
            if extension.valueCode not in GlucoseContext.VALUES:
                raise _refuse(
                    "code-invalid",
                    _("Unknown glucose context; use one of: %(codes)s.")
                    % {"codes": ", ".join(sorted(GlucoseContext.VALUES))},
                    f"{root}.extension",
                )
            return str(extension.valueCode)
    return GlucoseContext.RANDOM


def _bp_values(observation: Any, root: str) -> dict[str, Decimal]:
    values: dict[str, Decimal] = {}
    for index, component in enumerate(observation.component or []):
        path = f"{root}.component[{index}]"
        names = [BP_COMPONENTS[code] for code in _loinc_codes(component.code) if code in BP_COMPONENTS]
        if not names:
            continue
        value, _unit = _value(component.valueQuantity, HEART_RATE if names[0] == "pulse" else BLOOD_PRESSURE, path)
        values[names[0]] = value
    if not {"systolic", "diastolic"} <= values.keys():
        raise _refuse(
            "required",
            _("A blood pressure needs a systolic (8480-6) and a diastolic (8462-4) component."),
            f"{root}.component",
        )
    return values


def observation_parse(observation: Any, *, root: str = "Observation") -> ParsedObservation:
    """The reading an Observation describes; FhirError when it cannot be one."""
    if observation.status not in ACCEPTED_STATUSES:
        raise _refuse(
            "value",
            _("Only final observations are recorded (status final, amended or corrected)."),
            f"{root}.status",
        )
    if observation.dataAbsentReason is not None:
        raise _refuse("required", _("An observation without a value cannot be recorded."), f"{root}.dataAbsentReason")
    kind = _kind(observation, root)
    unit = ""
    context = ""
    if kind is BLOOD_PRESSURE:
        values = _bp_values(observation, root)
    else:
        value, unit = _value(observation.valueQuantity, kind, f"{root}.valueQuantity")
        values = {kind.fields[0].name: value}
        if kind is GLUCOSE:
            context = _context(observation, root)
        else:
            unit = ""
    notes = [str(note.text).strip() for note in observation.note or [] if note.text]
    return ParsedObservation(
        patient_id=_patient_id(observation, root),
        kind=kind.code,
        values=values,
        unit=unit,
        context=context,
        measured_at=_moment(observation, root),
        source=_source(observation),
        note=" ".join(notes),
    )
