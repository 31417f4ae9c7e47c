"""How readings read: values in the viewer's units, and their labels."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from apps.vitals.flags import Severity, category_label
from apps.vitals.kinds import GLUCOSE, KINDS, GlucoseContext, glucose_display, kind_get, quantize
from apps.vitals.models import Reading


def _number(value: Decimal) -> str:
    return f"{value.normalize():f}" if value == value.to_integral_value() else f"{value:f}"


def field_display(*, kind: str, name: str, value: Any, glucose_unit: str) -> str:
    """One value with its unit, e.g. '7.2 mmol/L', '130 mg/dL', '36.8 °C'."""
    number = Decimal(str(value))
    spec = kind_get(kind)
    if spec is GLUCOSE and name == "glucose":
        return f"{_number(glucose_display(number, glucose_unit))} {glucose_unit}"
    value_field = spec.field(name)
    return f"{_number(quantize(number, value_field.decimals).normalize())} {value_field.unit_label}"


def reading_values_display(reading: Reading, *, glucose_unit: str) -> str:
    """The reading in one line: '142/91 mmHg, pulse 72 beats/min'."""
    values = reading.values
    if reading.kind == "blood_pressure":
        text = f"{values['systolic']}/{values['diastolic']} mmHg"
        if values.get("pulse") is not None:
            pulse = field_display(kind=reading.kind, name="pulse", value=values["pulse"], glucose_unit=glucose_unit)
            text += ", " + _("pulse %(pulse)s") % {"pulse": pulse}
        return text
    spec = kind_get(reading.kind)
    parts = [
        field_display(kind=reading.kind, name=f.name, value=values[f.name], glucose_unit=glucose_unit)
        for f in spec.fields
        if values.get(f.name) is not None
    ]
    for derived in spec.derived:
        if values.get(derived.name) is not None:
            parts.append(f"{derived.label} {_number(Decimal(str(values[derived.name])))}")
    return ", ".join(parts)


def kind_label(code: str) -> str:
    if code == "ecg":  # an ECG recording (its own model, not a kind of reading)
        return _("ECG")
    spec = KINDS.get(code)
    return str(spec.label) if spec else code


def severity_label(code: str) -> str:
    try:
        return str(Severity(code).label)
    except ValueError:
        return code


def context_label(code: str) -> str:
    return str(dict(GlucoseContext.CHOICES).get(code, ""))


__all__ = ["category_label", "context_label", "field_display", "kind_label", "reading_values_display", "severity_label"]
