"""The kinds of reading: what each one measures, its codes (LOINC), its
canonical unit (UCUM), the fields a person enters and the values a living
patient can show (plausibility limits). docs/vitals.md explains each limit.

A new kind is one more ``Kind`` in ``KINDS`` (and its flag rule in
flags.py); readings store their values as JSON keyed by field name, so no
migration is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

MMOL_L = "mmol/L"
MG_DL = "mg/dL"
GLUCOSE_UNITS = (MMOL_L, MG_DL)
MG_DL_PER_MMOL_L = Decimal("18.0")


@dataclass(frozen=True)
class ValueField:
    """One number of a reading, in the kind's canonical unit."""

    name: str
    label: Promise
    loinc: str
    ucum: str  # the unit's UCUM code, for FHIR
    unit_label: str | Promise  # as people write it
    low: Decimal  # plausibility: the lowest value a living patient shows
    high: Decimal
    decimals: int  # stored precision
    required: bool = True


@dataclass(frozen=True)
class Kind:
    code: str
    label: Promise
    loinc: str  # the observation's code (a panel for blood pressure)
    fields: tuple[ValueField, ...]
    has_context: bool = False  # glucose: fasting, before a meal…
    derived: tuple[ValueField, ...] = field(default_factory=tuple)  # computed, never entered (BMI)

    def field(self, name: str) -> ValueField:
        for value_field in self.fields + self.derived:
            if value_field.name == name:
                return value_field
        raise KeyError(name)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


class GlucoseContext:
    FASTING = "fasting"
    BEFORE_MEAL = "before_meal"
    AFTER_MEAL = "after_meal"
    BEDTIME = "bedtime"
    RANDOM = "random"

    CHOICES = (
        (FASTING, _("Fasting")),
        (BEFORE_MEAL, _("Before a meal")),
        (AFTER_MEAL, _("After a meal (2 hours)")),
        (BEDTIME, _("At bedtime")),
        (RANDOM, _("Random")),
    )
    VALUES = frozenset(code for code, _label in CHOICES)


def _d(value: str) -> Decimal:
    return Decimal(value)


PULSE = ValueField(
    name="pulse",
    label=_("Pulse"),
    loinc="8867-4",
    ucum="/min",
    unit_label=pgettext_lazy("unit", "beats/min"),
    low=_d("20"),
    high=_d("300"),
    decimals=0,
    required=False,
)

BLOOD_PRESSURE = Kind(
    code="blood_pressure",
    label=_("Blood pressure"),
    loinc="85354-9",
    fields=(
        ValueField("systolic", _("Systolic (upper)"), "8480-6", "mm[Hg]", "mmHg", _d("50"), _d("300"), 0),
        ValueField("diastolic", _("Diastolic (lower)"), "8462-4", "mm[Hg]", "mmHg", _d("20"), _d("200"), 0),
        PULSE,
    ),
)
GLUCOSE = Kind(
    code="glucose",
    label=_("Blood glucose"),
    loinc="15074-8",  # mmol/L; 2339-0 when shown in mg/dL
    fields=(ValueField("glucose", _("Glucose"), "15074-8", "mmol/L", MMOL_L, _d("0.5"), _d("50"), 2),),
    has_context=True,
)
HEART_RATE = Kind(
    code="heart_rate",
    label=_("Heart rate"),
    loinc="8867-4",
    fields=(ValueField("heart_rate", _("Heart rate"), "8867-4", "/min", PULSE.unit_label, _d("20"), _d("300"), 0),),
)
SPO2 = Kind(
    code="spo2",
    label=_("Oxygen saturation (SpO2)"),
    loinc="2708-6",  # with 59408-5 (by pulse oximetry) in FHIR
    fields=(ValueField("spo2", _("SpO2"), "2708-6", "%", "%", _d("50"), _d("100"), 0),),
)
TEMPERATURE = Kind(
    code="temperature",
    label=_("Body temperature"),
    loinc="8310-5",
    fields=(ValueField("temperature", _("Temperature"), "8310-5", "Cel", "°C", _d("30"), _d("45"), 1),),
)
WEIGHT = Kind(
    code="weight",
    label=_("Body weight"),
    loinc="29463-7",
    fields=(ValueField("weight", _("Weight"), "29463-7", "kg", "kg", _d("1"), _d("400"), 2),),
    derived=(ValueField("bmi", _("BMI"), "39156-5", "kg/m2", "kg/m²", _d("5"), _d("150"), 1, required=False),),
)
HEIGHT = Kind(
    code="height",
    label=_("Body height"),
    loinc="8302-2",
    fields=(ValueField("height", _("Height"), "8302-2", "cm", "cm", _d("30"), _d("250"), 1),),
)

KINDS: dict[str, Kind] = {
    kind.code: kind for kind in (BLOOD_PRESSURE, GLUCOSE, HEART_RATE, SPO2, TEMPERATURE, WEIGHT, HEIGHT)
}
KIND_CHOICES = [(kind.code, kind.label) for kind in KINDS.values()]


def kind_get(code: str) -> Kind:
    """The kind with that code; KeyError if there is none."""
    return KINDS[code]


# --- Numbers and units ------------------------------------------------------


def parse_number(raw: Any) -> Decimal | None:
    """A number from a form or JSON: int, float, Decimal or a string with a
    decimal point or a decimal comma. None if it is not a finite number."""
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, str):
        raw = raw.strip().replace(",", ".")
        if not raw:
            return None
    try:
        number = Decimal(str(raw))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def quantize(value: Decimal, decimals: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def mg_dl_to_mmol_l(value: Decimal) -> Decimal:
    return value / MG_DL_PER_MMOL_L


def mmol_l_to_mg_dl(value: Decimal) -> Decimal:
    return value * MG_DL_PER_MMOL_L


def to_canonical(*, kind: Kind, name: str, value: Decimal, unit: str = "") -> Decimal:
    """A value entered in ``unit`` (only glucose has a choice) in the
    kind's canonical unit, at its stored precision."""
    if kind is GLUCOSE and unit == MG_DL:
        value = mg_dl_to_mmol_l(value)
    return quantize(value, kind.field(name).decimals)


def glucose_display(value_mmol_l: Decimal | float, unit: str) -> Decimal:
    """A stored glucose value as shown in ``unit``: mg/dL whole, mmol/L to one decimal."""
    value = Decimal(str(value_mmol_l))
    if unit == MG_DL:
        return quantize(mmol_l_to_mg_dl(value), 0)
    return quantize(value, 1)


def limits_in(value_field: ValueField, unit: str) -> tuple[Decimal, Decimal]:
    """A field's plausibility limits in the unit the person used."""
    if value_field.name == "glucose" and unit == MG_DL:
        return quantize(mmol_l_to_mg_dl(value_field.low), 0), quantize(mmol_l_to_mg_dl(value_field.high), 0)
    return value_field.low, value_field.high


def values_as_numbers(values: Mapping[str, Any]) -> dict[str, Decimal]:
    """Stored (JSON) values back as Decimals."""
    return {name: Decimal(str(value)) for name, value in values.items() if value is not None}


def bmi(*, weight_kg: Decimal, height_cm: Decimal) -> Decimal:
    metres = height_cm / Decimal(100)
    return quantize(weight_kg / (metres * metres), 1)
