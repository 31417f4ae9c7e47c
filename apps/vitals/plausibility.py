"""Is a reading one a living patient can show? Pure functions: the values
as entered (in the person's unit) in, the canonical values or the reasons
to refuse them out. The limits are in kinds.py and docs/vitals.md."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext_lazy as _

from apps.vitals.kinds import (
    BLOOD_PRESSURE,
    GLUCOSE,
    GLUCOSE_UNITS,
    GlucoseContext,
    Kind,
    limits_in,
    parse_number,
    to_canonical,
)

NON_FIELD = "__all__"


@dataclass
class Checked:
    values: dict[str, Decimal]  # canonical units, stored precision
    errors: dict[str, list[str]]

    @property
    def ok(self) -> bool:
        return not self.errors


def _format(number: Decimal) -> str:
    return f"{number.normalize():f}"


def values_check(*, kind: Kind, raw: Mapping[str, Any], unit: str = "", context: str = "") -> Checked:
    """Parse and check each field of ``kind`` in ``raw`` (entered in
    ``unit``); fields the kind doesn't have are errors too."""
    errors: dict[str, list[str]] = {}
    values: dict[str, Decimal] = {}
    if kind is GLUCOSE and unit not in GLUCOSE_UNITS:
        return Checked(values={}, errors={"unit": [str(_("Choose mmol/L or mg/dL."))]})
    for name in raw:
        if name not in kind.field_names:
            errors.setdefault(name, []).append(str(_("This kind of reading has no such value.")))
    for value_field in kind.fields:
        given = raw.get(value_field.name)
        if given is None or given == "":
            if value_field.required:
                errors.setdefault(value_field.name, []).append(str(_("Enter a value.")))
            continue
        number = parse_number(given)
        if number is None:
            errors.setdefault(value_field.name, []).append(str(_("Enter a number.")))
            continue
        field_unit = unit if kind is GLUCOSE else ""
        low, high = limits_in(value_field, field_unit)
        if not low <= number <= high:
            errors.setdefault(value_field.name, []).append(
                str(
                    _("%(name)s must be between %(low)s and %(high)s %(unit)s.")
                    % {
                        "name": value_field.label,
                        "low": _format(low),
                        "high": _format(high),
                        "unit": field_unit or value_field.unit_label,
                    }
                )
            )
            continue
        values[value_field.name] = to_canonical(kind=kind, name=value_field.name, value=number, unit=field_unit)
    if (
        kind is BLOOD_PRESSURE
        and values.keys() >= {"systolic", "diastolic"}
        and values["systolic"] <= values["diastolic"]
    ):
        errors.setdefault(NON_FIELD, []).append(
            str(_("The upper (systolic) value must be higher than the lower (diastolic) one."))
        )
    if kind.has_context and context not in GlucoseContext.VALUES:
        errors.setdefault("context", []).append(str(_("Choose when you measured.")))
    if not kind.has_context and context:
        errors.setdefault("context", []).append(str(_("This kind of reading has no context.")))
    return Checked(values=values, errors=errors)
