"""Guideline flags at the edges of each band, and targets overriding them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.vitals.flags import (
    ADVICE,
    CATEGORY_LABELS,
    BpGuideline,
    Target,
    advice_for,
    flag_bp_acc_aha_2017,
    flag_bp_china_2018,
    flag_glucose,
    flag_heart_rate,
    flag_reading,
    flag_spo2,
    flag_temperature,
)

pytestmark = pytest.mark.sqlite
D = Decimal


@pytest.mark.parametrize(
    ("systolic", "diastolic", "category", "severity"),
    [
        (119, 79, "bp_normal", "normal"),
        (120, 79, "bp_high_normal", "normal"),
        (139, 89, "bp_high_normal", "normal"),
        (140, 89, "bp_isolated_systolic", "attention"),
        (140, 90, "bp_grade_1", "attention"),
        (130, 95, "bp_grade_1", "attention"),
        (160, 99, "bp_grade_2", "attention"),
        (150, 100, "bp_grade_2", "attention"),
        (179, 109, "bp_grade_2", "attention"),
        (180, 100, "bp_grade_3", "urgent"),
        (170, 110, "bp_grade_3", "urgent"),
        (181, 100, "bp_crisis", "critical"),
        (170, 121, "bp_crisis", "critical"),
        (180, 120, "bp_grade_3", "urgent"),
        (89, 60, "bp_low", "attention"),
        (69, 40, "bp_very_low", "urgent"),
    ],
)
def test_china_2018(systolic: int, diastolic: int, category: str, severity: str) -> None:
    flag = flag_bp_china_2018(systolic=D(systolic), diastolic=D(diastolic))
    assert (flag.category, flag.severity) == (category, severity)


@pytest.mark.parametrize(
    ("systolic", "diastolic", "category", "severity"),
    [
        (119, 79, "bp_normal", "normal"),
        (120, 79, "bp_elevated", "normal"),
        (129, 79, "bp_elevated", "normal"),
        (130, 79, "bp_stage_1", "attention"),
        (125, 80, "bp_stage_1", "attention"),
        (139, 89, "bp_stage_1", "attention"),
        (140, 85, "bp_stage_2", "attention"),
        (135, 90, "bp_stage_2", "attention"),
        (180, 120, "bp_stage_2", "attention"),
        (181, 90, "bp_crisis", "critical"),
        (150, 121, "bp_crisis", "critical"),
    ],
)
def test_acc_aha_2017(systolic: int, diastolic: int, category: str, severity: str) -> None:
    flag = flag_bp_acc_aha_2017(systolic=D(systolic), diastolic=D(diastolic))
    assert (flag.category, flag.severity) == (category, severity)


def test_the_guideline_is_chosen() -> None:
    values = {"systolic": D(132), "diastolic": D(78)}
    assert flag_reading(kind="blood_pressure", values=values).category == "bp_high_normal"
    acc = flag_reading(kind="blood_pressure", values=values, bp_guideline=BpGuideline.ACC_AHA_2017)
    assert acc.category == "bp_stage_1"


def test_a_bad_pulse_in_a_bp_reading_wins() -> None:
    flag = flag_reading(kind="blood_pressure", values={"systolic": D(118), "diastolic": D(76), "pulse": D(160)})
    assert (flag.category, flag.severity) == ("hr_very_fast", "critical")


@pytest.mark.parametrize(
    ("mmol_l", "context", "category", "severity"),
    [
        ("2.99", "random", "glucose_low_level_2", "critical"),
        ("3.0", "random", "glucose_low_level_1", "attention"),
        ("3.89", "fasting", "glucose_low_level_1", "attention"),
        ("3.9", "fasting", "glucose_in_range", "normal"),
        ("7.2", "fasting", "glucose_in_range", "normal"),
        ("7.3", "fasting", "glucose_above_range", "attention"),
        ("7.3", "before_meal", "glucose_above_range", "attention"),
        ("10.0", "after_meal", "glucose_in_range", "normal"),
        ("10.1", "after_meal", "glucose_above_range", "attention"),
        ("13.9", "bedtime", "glucose_above_range", "attention"),
        ("14.0", "random", "glucose_high_level_2", "urgent"),
        ("33.3", "random", "glucose_high_level_2", "urgent"),
        ("33.4", "random", "glucose_very_high", "critical"),
    ],
)
def test_glucose_ada(mmol_l: str, context: str, category: str, severity: str) -> None:
    flag = flag_glucose(glucose_mmol_l=D(mmol_l), context=context)
    assert (flag.category, flag.severity) == (category, severity)


@pytest.mark.parametrize(
    ("spo2", "severity"),
    [
        (100, "normal"),
        (95, "normal"),
        (94, "attention"),
        (93, "attention"),
        (92, "urgent"),
        (89, "urgent"),
        (88, "critical"),
        (50, "critical"),
    ],
)
def test_spo2(spo2: int, severity: str) -> None:
    assert flag_spo2(spo2_pct=D(spo2)).severity == severity


@pytest.mark.parametrize(
    ("rate", "severity"),
    [
        (29, "critical"),
        (30, "urgent"),
        (39, "urgent"),
        (40, "attention"),
        (49, "attention"),
        (50, "normal"),
        (100, "normal"),
        (101, "attention"),
        (120, "attention"),
        (121, "urgent"),
        (150, "urgent"),
        (151, "critical"),
    ],
)
def test_heart_rate(rate: int, severity: str) -> None:
    assert flag_heart_rate(rate_per_min=D(rate)).severity == severity


@pytest.mark.parametrize(
    ("celsius", "category", "severity"),
    [
        ("31.9", "temp_hypothermia_severe", "critical"),
        ("32.0", "temp_hypothermia", "urgent"),
        ("34.9", "temp_hypothermia", "urgent"),
        ("35.0", "temp_low", "attention"),
        ("36.0", "temp_normal", "normal"),
        ("37.2", "temp_normal", "normal"),
        ("37.3", "temp_fever_low", "attention"),
        ("38.0", "temp_fever_low", "attention"),
        ("38.1", "temp_fever_moderate", "attention"),
        ("39.0", "temp_fever_moderate", "attention"),
        ("39.1", "temp_fever_high", "urgent"),
        ("41.0", "temp_fever_high", "urgent"),
        ("41.1", "temp_hyperpyrexia", "critical"),
    ],
)
def test_temperature(celsius: str, category: str, severity: str) -> None:
    flag = flag_temperature(temperature_c=D(celsius))
    assert (flag.category, flag.severity) == (category, severity)


def test_targets_override_the_default_bands() -> None:
    copd = [Target(field="spo2", low=D(88), high=D(92))]
    inside = flag_reading(kind="spo2", values={"spo2": D(90)}, targets=copd)
    assert (inside.category, inside.severity, inside.rule) == ("within_target", "normal", "target")
    above = flag_reading(kind="spo2", values={"spo2": D(96)}, targets=copd)
    assert (above.category, above.severity) == ("above_target", "attention")
    strict = [Target(field="systolic", high=D(130)), Target(field="diastolic", high=D(80))]
    high_normal = flag_reading(kind="blood_pressure", values={"systolic": D(135), "diastolic": D(78)}, targets=strict)
    assert (high_normal.category, high_normal.severity) == ("above_target", "attention")


def test_a_target_never_hides_a_danger() -> None:
    loose = [Target(field="systolic", high=D(200)), Target(field="diastolic", high=D(130))]
    crisis = flag_reading(kind="blood_pressure", values={"systolic": D(190), "diastolic": D(100)}, targets=loose)
    assert crisis.severity == "critical"
    copd = [Target(field="spo2", low=D(88), high=D(92))]
    assert flag_reading(kind="spo2", values={"spo2": D(86)}, targets=copd).severity == "critical"
    glucose = [Target(field="glucose", low=D(4), high=D(12))]
    urgent = flag_reading(kind="glucose", values={"glucose": D(15)}, context="random", targets=glucose)
    assert (urgent.category, urgent.severity) == ("glucose_high_level_2", "urgent")


def test_every_category_has_a_label_and_advice_names_the_number() -> None:
    for category in ADVICE:
        assert category in CATEGORY_LABELS
    text = advice_for("bp_crisis", emergency_number="120")
    assert "call 120" in text and "180/120" in text
    assert advice_for("bp_normal", emergency_number="120") == "In the normal range. Keep it up."
