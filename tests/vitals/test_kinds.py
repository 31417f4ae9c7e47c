"""The kinds registry and the plausibility limits, at their edges."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.vitals.kinds import (
    BLOOD_PRESSURE,
    GLUCOSE,
    KINDS,
    MG_DL,
    MMOL_L,
    SPO2,
    TEMPERATURE,
    WEIGHT,
    bmi,
    glucose_display,
    parse_number,
    to_canonical,
)
from apps.vitals.plausibility import NON_FIELD, values_check

pytestmark = pytest.mark.sqlite


def test_every_kind_has_codes_units_and_limits() -> None:
    for kind in KINDS.values():
        assert kind.loinc
        for value_field in kind.fields:
            assert value_field.loinc and value_field.ucum
            assert value_field.low < value_field.high
    assert BLOOD_PRESSURE.loinc == "85354-9"
    assert [f.loinc for f in BLOOD_PRESSURE.fields] == ["8480-6", "8462-4", "8867-4"]
    assert GLUCOSE.fields[0].ucum == "mmol/L"
    assert SPO2.fields[0].ucum == "%"
    assert TEMPERATURE.fields[0].ucum == "Cel"
    assert WEIGHT.fields[0].ucum == "kg"


@pytest.mark.parametrize(
    ("kind", "raw", "ok"),
    [
        (BLOOD_PRESSURE, {"systolic": 50, "diastolic": 20}, True),
        (BLOOD_PRESSURE, {"systolic": 49, "diastolic": 20}, False),
        (BLOOD_PRESSURE, {"systolic": 300, "diastolic": 200}, True),
        (BLOOD_PRESSURE, {"systolic": 301, "diastolic": 90}, False),
        (BLOOD_PRESSURE, {"systolic": 120, "diastolic": 19}, False),
        (BLOOD_PRESSURE, {"systolic": 120, "diastolic": 80, "pulse": 19}, False),
        (BLOOD_PRESSURE, {"systolic": 120, "diastolic": 80, "pulse": 300}, True),
        (SPO2, {"spo2": 100}, True),
        (SPO2, {"spo2": 101}, False),
        (SPO2, {"spo2": 50}, True),
        (SPO2, {"spo2": 49}, False),
        (TEMPERATURE, {"temperature": "45.0"}, True),
        (TEMPERATURE, {"temperature": "45.1"}, False),
        (TEMPERATURE, {"temperature": "29.9"}, False),
        (WEIGHT, {"weight": "0.9"}, False),
        (WEIGHT, {"weight": 400}, True),
        (WEIGHT, {"weight": 401}, False),
    ],
)
def test_it_checks_the_limits(kind: object, raw: dict[str, object], ok: bool) -> None:
    checked = values_check(kind=kind, raw=raw)  # type: ignore[arg-type]
    assert checked.ok is ok, checked.errors


def test_systolic_must_be_above_diastolic() -> None:
    checked = values_check(kind=BLOOD_PRESSURE, raw={"systolic": 90, "diastolic": 90})
    assert "higher than the lower" in checked.errors[NON_FIELD][0]


def test_it_names_the_limits_in_the_unit_used() -> None:
    mg = values_check(kind=GLUCOSE, raw={"glucose": 5}, unit=MG_DL, context="fasting")
    assert mg.errors == {"glucose": ["Glucose must be between 9 and 900 mg/dL."]}
    mmol = values_check(kind=GLUCOSE, raw={"glucose": "50.1"}, unit=MMOL_L, context="fasting")
    assert mmol.errors == {"glucose": ["Glucose must be between 0.5 and 50 mmol/L."]}


def test_it_refuses_missing_text_and_unknown_values() -> None:
    checked = values_check(kind=BLOOD_PRESSURE, raw={"systolic": "abc", "weight": 70})
    assert checked.errors["systolic"] == ["Enter a number."]
    assert checked.errors["diastolic"] == ["Enter a value."]
    assert "weight" in checked.errors
    assert "pulse" not in checked.errors  # optional


def test_glucose_needs_a_context_and_a_unit() -> None:
    assert "context" in values_check(kind=GLUCOSE, raw={"glucose": 5}, unit=MMOL_L).errors
    assert "unit" in values_check(kind=GLUCOSE, raw={"glucose": 5}, unit="g/L", context="fasting").errors
    assert "context" in values_check(kind=SPO2, raw={"spo2": 97}, context="fasting").errors


def test_decimal_commas_and_numbers() -> None:
    assert parse_number("36,6") == Decimal("36.6")
    assert parse_number(" 7.2 ") == Decimal("7.2")
    assert parse_number("nan") is None
    assert parse_number("Infinity") is None
    assert parse_number(True) is None
    assert parse_number("") is None
    checked = values_check(kind=TEMPERATURE, raw={"temperature": "36,64"})
    assert checked.values == {"temperature": Decimal("36.6")}


@pytest.mark.parametrize(
    ("mg_dl", "mmol_l"),
    [("70", "3.89"), ("54", "3.00"), ("180", "10.00"), ("250", "13.89"), ("100", "5.56"), ("126", "7.00")],
)
def test_glucose_is_stored_in_mmol_per_litre(mg_dl: str, mmol_l: str) -> None:
    stored = to_canonical(kind=GLUCOSE, name="glucose", value=Decimal(mg_dl), unit=MG_DL)
    assert stored == Decimal(mmol_l)
    assert glucose_display(stored, MG_DL) == Decimal(mg_dl)  # round trip to the whole mg/dL


def test_glucose_is_shown_in_the_users_unit() -> None:
    assert glucose_display(Decimal("5.56"), MMOL_L) == Decimal("5.6")
    assert glucose_display(Decimal("5.56"), MG_DL) == Decimal("100")


def test_bmi() -> None:
    assert bmi(weight_kg=Decimal("70"), height_cm=Decimal("175")) == Decimal("22.9")
