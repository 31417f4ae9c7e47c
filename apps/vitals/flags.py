"""Guideline-based flags: a reading's category and severity, and the plain
advice a patient reads after saving it. Pure functions of the values (in
canonical units), the blood-pressure guideline in use and the patient's own
targets. Each rule's source is in docs/vitals.md.

Severity means what the care team must do: ``normal`` nothing, ``attention``
look at it at the next review, ``urgent`` an alert for the patient's
doctors today (in the app), ``critical`` an alert now (in the app and SMS).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


class Severity(models.TextChoices):
    NORMAL = "normal", _("Normal")
    ATTENTION = "attention", _("Needs attention")
    URGENT = "urgent", _("Urgent")
    CRITICAL = "critical", _("Critical")


RANK = {Severity.NORMAL: 0, Severity.ATTENTION: 1, Severity.URGENT: 2, Severity.CRITICAL: 3}
ALERTING = frozenset({Severity.URGENT, Severity.CRITICAL})


class BpGuideline(models.TextChoices):
    CHINA_2018 = "china_2018", _("Chinese hypertension guideline 2018")
    ACC_AHA_2017 = "acc_aha_2017", _("ACC/AHA 2017")


@dataclass(frozen=True)
class Flag:
    category: str
    severity: str
    rule: str  # the rule set that decided: china_2018, acc_aha_2017, ada, spo2, heart_rate, temperature, bmi, target

    def worse_than(self, other: Flag) -> bool:
        return RANK[Severity(self.severity)] > RANK[Severity(other.severity)]


@dataclass(frozen=True)
class Target:
    """A doctor's target for one value of one kind: outside [low, high] is flagged."""

    field: str
    low: Decimal | None = None
    high: Decimal | None = None


N, A, U, C = Severity.NORMAL, Severity.ATTENTION, Severity.URGENT, Severity.CRITICAL


# --- Blood pressure ---------------------------------------------------------


def _bp_low(systolic: Decimal) -> Flag | None:
    if systolic < 70:
        return Flag("bp_very_low", U, "bp_low")
    if systolic < 90:
        return Flag("bp_low", A, "bp_low")
    return None


def flag_bp_china_2018(*, systolic: Decimal, diastolic: Decimal) -> Flag:
    """中国高血压防治指南 2018 年修订版, table 4 (grades), with the crisis
    threshold of the issue (> 180 and/or > 120)."""
    rule = BpGuideline.CHINA_2018
    if systolic > 180 or diastolic > 120:
        return Flag("bp_crisis", C, rule)
    if systolic >= 180 or diastolic >= 110:
        return Flag("bp_grade_3", U, rule)
    if systolic >= 160 or diastolic >= 100:
        return Flag("bp_grade_2", A, rule)
    if systolic >= 140 and diastolic < 90:
        return Flag("bp_isolated_systolic", A, rule)
    if systolic >= 140 or diastolic >= 90:
        return Flag("bp_grade_1", A, rule)
    low = _bp_low(systolic)
    if low is not None:
        return low
    if systolic >= 120 or diastolic >= 80:
        return Flag("bp_high_normal", N, rule)
    return Flag("bp_normal", N, rule)


def flag_bp_acc_aha_2017(*, systolic: Decimal, diastolic: Decimal) -> Flag:
    """2017 ACC/AHA guideline, section 3.1 (categories) and 11.2 (crisis)."""
    rule = BpGuideline.ACC_AHA_2017
    if systolic > 180 or diastolic > 120:
        return Flag("bp_crisis", C, rule)
    if systolic >= 140 or diastolic >= 90:
        return Flag("bp_stage_2", A, rule)
    if systolic >= 130 or diastolic >= 80:
        return Flag("bp_stage_1", A, rule)
    low = _bp_low(systolic)
    if low is not None:
        return low
    if systolic >= 120:
        return Flag("bp_elevated", N, rule)
    return Flag("bp_normal", N, rule)


# --- Glucose (mmol/L) -------------------------------------------------------

PREMEAL_HIGH_MMOL_L = Decimal("7.2")  # ADA preprandial target 4.4-7.2 (80-130 mg/dL)
POSTMEAL_HIGH_MMOL_L = Decimal("10.0")  # ADA peak postprandial < 10.0 (180 mg/dL)


def flag_glucose(*, glucose_mmol_l: Decimal, context: str) -> Flag:
    """ADA Standards of Care in Diabetes 2024, sections 6 (glycemic goals,
    hypoglycemia levels 1 and 2) and 6.2 (level 2 hyperglycemia > 13.9)."""
    g = glucose_mmol_l
    if g < Decimal("3.0"):
        return Flag("glucose_low_level_2", C, "ada")
    if g < Decimal("3.9"):
        return Flag("glucose_low_level_1", A, "ada")
    if g > Decimal("33.3"):
        return Flag("glucose_very_high", C, "ada")
    if g > Decimal("13.9"):
        return Flag("glucose_high_level_2", U, "ada")
    limit = PREMEAL_HIGH_MMOL_L if context in {"fasting", "before_meal"} else POSTMEAL_HIGH_MMOL_L
    if g > limit:
        return Flag("glucose_above_range", A, "ada")
    return Flag("glucose_in_range", N, "ada")


# --- SpO2, heart rate, temperature -------------------------------------------


def flag_spo2(*, spo2_pct: Decimal) -> Flag:
    """NHS England pulse oximetry at home (93-94 % seek advice, ≤ 92 % urgent);
    ≤ 88 % critical (BTS 2017: below the lowest target of any patient)."""
    if spo2_pct <= 88:
        return Flag("spo2_very_low", C, "spo2")
    if spo2_pct <= 92:
        return Flag("spo2_low", U, "spo2")
    if spo2_pct <= 94:
        return Flag("spo2_borderline", A, "spo2")
    return Flag("spo2_normal", N, "spo2")


def flag_heart_rate(*, rate_per_min: Decimal) -> Flag:
    """At rest: 50-100/min normal (AHA); the ERC/AHA brady- and tachycardia
    algorithms' thresholds for the urgent and critical bands."""
    if rate_per_min < 30:
        return Flag("hr_very_slow", C, "heart_rate")
    if rate_per_min < 40:
        return Flag("hr_slow_marked", U, "heart_rate")
    if rate_per_min < 50:
        return Flag("hr_slow", A, "heart_rate")
    if rate_per_min > 150:
        return Flag("hr_very_fast", C, "heart_rate")
    if rate_per_min > 120:
        return Flag("hr_fast_marked", U, "heart_rate")
    if rate_per_min > 100:
        return Flag("hr_fast", A, "heart_rate")
    return Flag("hr_normal", N, "heart_rate")


def flag_temperature(*, temperature_c: Decimal) -> Flag:
    """Fever grades of 诊断学 (People's Medical Publishing House, 9th ed.):
    37.3-38.0 low, 38.1-39.0 moderate, 39.1-41.0 high, > 41.0 hyperpyrexia;
    hypothermia < 35.0 (mild), < 32.0 (moderate to severe)."""
    t = temperature_c
    if t < 32:
        return Flag("temp_hypothermia_severe", C, "temperature")
    if t < 35:
        return Flag("temp_hypothermia", U, "temperature")
    if t > 41:
        return Flag("temp_hyperpyrexia", C, "temperature")
    if t > 39:
        return Flag("temp_fever_high", U, "temperature")
    if t > 38:
        return Flag("temp_fever_moderate", A, "temperature")
    if t >= Decimal("37.3"):
        return Flag("temp_fever_low", A, "temperature")
    if t < 36:
        return Flag("temp_low", A, "temperature")
    return Flag("temp_normal", N, "temperature")


def flag_bmi(*, bmi: Decimal | None) -> Flag:
    """Chinese adult cut-offs (WS/T 428-2013): < 18.5, 24, 28. Weight is
    never urgent by itself: the class is shown, the severity stays normal."""
    if bmi is None:
        return Flag("weight", N, "bmi")
    if bmi < Decimal("18.5"):
        return Flag("bmi_underweight", N, "bmi")
    if bmi >= 28:
        return Flag("bmi_obese", N, "bmi")
    if bmi >= 24:
        return Flag("bmi_overweight", N, "bmi")
    return Flag("bmi_normal", N, "bmi")


# --- Whole readings -----------------------------------------------------------


def _default_flag(*, kind: str, values: Mapping[str, Decimal], context: str, bp_guideline: str) -> Flag:
    if kind == "blood_pressure":
        rule = flag_bp_acc_aha_2017 if bp_guideline == BpGuideline.ACC_AHA_2017 else flag_bp_china_2018
        flag = rule(systolic=values["systolic"], diastolic=values["diastolic"])
        if "pulse" in values:
            pulse = flag_heart_rate(rate_per_min=values["pulse"])
            if pulse.worse_than(flag):
                return pulse
        return flag
    if kind == "glucose":
        return flag_glucose(glucose_mmol_l=values["glucose"], context=context)
    if kind == "spo2":
        return flag_spo2(spo2_pct=values["spo2"])
    if kind == "heart_rate":
        return flag_heart_rate(rate_per_min=values["heart_rate"])
    if kind == "temperature":
        return flag_temperature(temperature_c=values["temperature"])
    if kind == "weight":
        return flag_bmi(bmi=values.get("bmi"))
    return Flag("recorded", N, "none")


def _outside(values: Mapping[str, Decimal], targets: Sequence[Target]) -> str:
    """'above', 'below' or '' for the values against the targets."""
    for target in targets:
        value = values.get(target.field)
        if value is None:
            continue
        if target.high is not None and value > target.high:
            return "above"
        if target.low is not None and value < target.low:
            return "below"
    return ""


def flag_reading(
    *,
    kind: str,
    values: Mapping[str, Decimal],
    context: str = "",
    bp_guideline: str = BpGuideline.CHINA_2018,
    targets: Sequence[Target] = (),
) -> Flag:
    """The reading's flag. A patient's targets (set by a doctor) replace the
    default bands, except that a critical reading stays critical and an
    urgent one outside the targets stays urgent: a target can calm routine
    flags for one patient, never hide a danger."""
    default = _default_flag(kind=kind, values=values, context=context, bp_guideline=bp_guideline)
    if default.severity == C or not targets:
        return default
    outside = _outside(values, targets)
    if not outside:
        return Flag("within_target", N, "target")
    if default.severity == U:
        return default
    return Flag(f"{outside}_target", A, "target")


# --- Words for people -------------------------------------------------------

CATEGORY_LABELS: dict[str, Promise] = {
    "bp_crisis": _("Hypertensive crisis"),
    "bp_grade_3": _("Grade 3 hypertension"),
    "bp_grade_2": _("Grade 2 hypertension"),
    "bp_grade_1": _("Grade 1 hypertension"),
    "bp_isolated_systolic": _("Isolated systolic hypertension"),
    "bp_high_normal": _("High-normal"),
    "bp_stage_2": _("Stage 2 hypertension"),
    "bp_stage_1": _("Stage 1 hypertension"),
    "bp_elevated": _("Elevated"),
    "bp_normal": _("Normal"),
    "bp_low": _("Low blood pressure"),
    "bp_very_low": _("Very low blood pressure"),
    "glucose_low_level_2": _("Very low glucose (level 2)"),
    "glucose_low_level_1": _("Low glucose (level 1)"),
    "glucose_very_high": _("Extremely high glucose"),
    "glucose_high_level_2": _("Very high glucose"),
    "glucose_above_range": _("Above the target range"),
    "glucose_in_range": _("In range"),
    "spo2_very_low": _("Very low oxygen"),
    "spo2_low": _("Low oxygen"),
    "spo2_borderline": _("Slightly low oxygen"),
    "spo2_normal": _("Normal"),
    "hr_very_slow": _("Very slow heart rate"),
    "hr_slow_marked": _("Slow heart rate"),
    "hr_slow": _("Slightly slow heart rate"),
    "hr_very_fast": _("Very fast heart rate"),
    "hr_fast_marked": _("Fast heart rate"),
    "hr_fast": _("Slightly fast heart rate"),
    "hr_normal": _("Normal"),
    "temp_hypothermia_severe": _("Severe hypothermia"),
    "temp_hypothermia": _("Hypothermia"),
    "temp_hyperpyrexia": _("Very high fever"),
    "temp_fever_high": _("High fever"),
    "temp_fever_moderate": _("Fever"),
    "temp_fever_low": _("Low-grade fever"),
    "temp_low": _("Slightly low temperature"),
    "temp_normal": _("Normal"),
    "bmi_underweight": _("Underweight (BMI)"),
    "bmi_normal": _("Healthy weight (BMI)"),
    "bmi_overweight": _("Overweight (BMI)"),
    "bmi_obese": _("Obese (BMI)"),
    "weight": _("Recorded"),
    "recorded": _("Recorded"),
    "ecg_irregular_rr": _("Irregular heart rhythm on the ECG: possible atrial fibrillation (screening hint)"),
    "ecg_poor_quality": _("ECG too noisy to judge"),
    "ecg_no_beats": _("No heartbeats found in the ECG"),
    "within_target": _("Within your target"),
    "above_target": _("Above your target"),
    "below_target": _("Below your target"),
}

_BP_HIGH = _(
    "Above the normal range. Keep taking your medicines, measure at the same times each day and show your "
    "doctor your readings."
)
_NORMAL = _("In the normal range. Keep it up.")
_TARGET_OUT = _(
    "Outside the target your doctor set for you. Measure again later; if it stays outside, tell your doctor."
)

ADVICE: dict[str, Promise] = {
    "bp_crisis": _(
        "Sit quietly for 5 minutes and measure again. If it is still above 180/120, or you have chest pain, "
        "shortness of breath, a severe headache, weakness or trouble speaking, call %(number)s or go to the "
        "clinic now."
    ),
    "bp_grade_3": _(
        "Very high. Rest for 5 minutes and measure again; if it stays this high, contact your doctor today."
    ),
    "bp_grade_2": _BP_HIGH,
    "bp_grade_1": _BP_HIGH,
    "bp_isolated_systolic": _BP_HIGH,
    "bp_stage_2": _BP_HIGH,
    "bp_stage_1": _BP_HIGH,
    "bp_high_normal": _("A little above ideal. Less salt, regular exercise and a healthy weight help."),
    "bp_elevated": _("A little above ideal. Less salt, regular exercise and a healthy weight help."),
    "bp_low": _(
        "Low. If you feel dizzy or faint, sit or lie down and drink some water; tell your doctor if it happens again."
    ),
    "bp_very_low": _(
        "Very low. Lie down and raise your legs. If you feel faint or confused or have chest pain, call "
        "%(number)s; otherwise contact your doctor today."
    ),
    "glucose_low_level_2": _(
        "Very low sugar. Take 15-20 g of fast sugar now (3-4 glucose tablets or half a glass of juice) and measure "
        "again in 15 minutes. If you cannot eat or drink, or feel confused, someone must call %(number)s."
    ),
    "glucose_low_level_1": _(
        "Low sugar. Take 15 g of fast sugar now (3-4 glucose tablets or half a glass of juice), measure again in "
        "15 minutes and repeat if it is still below 3.9 mmol/L (70 mg/dL)."
    ),
    "glucose_very_high": _("Extremely high sugar: this is dangerous. Call %(number)s or go to the clinic now."),
    "glucose_high_level_2": _(
        "High sugar. Drink water, check ketones if you can and measure again in 2 hours. If you vomit, breathe "
        "fast or feel very drowsy, call %(number)s."
    ),
    "glucose_above_range": _(
        "Above your target range. Keep to your treatment plan and show your doctor your readings."
    ),
    "spo2_very_low": _(
        "Very low oxygen. Call %(number)s or go to the clinic now, above all if you are short of breath."
    ),
    "spo2_low": _(
        "Low oxygen. Sit upright, rest and measure again in 5 minutes with warm hands. If it is still at or "
        "below 92%, contact your doctor or the clinic now."
    ),
    "spo2_borderline": _(
        "Slightly low. Rest, warm your hands and measure again in 5 minutes. If it stays at or below 94%, "
        "contact your doctor today."
    ),
    "hr_very_slow": _("Very slow pulse. If you feel faint, dizzy or short of breath, call %(number)s now."),
    "hr_slow_marked": _("Slow pulse. Rest and measure again in 5 minutes; if it stays this slow, contact your doctor."),
    "hr_slow": _("A little slow. This can be normal for fit people; tell your doctor if you feel dizzy or tired."),
    "hr_very_fast": _(
        "Very fast pulse. Sit down and rest. If it does not slow down within a few minutes, or you have chest "
        "pain or feel faint, call %(number)s."
    ),
    "hr_fast_marked": _("Fast pulse. Rest for 10 minutes and measure again; if it stays fast, contact your doctor."),
    "hr_fast": _("A little fast. Rest for 5 minutes and measure again while sitting quietly."),
    "temp_hypothermia_severe": _("Dangerously cold. Call %(number)s now and keep warm with blankets."),
    "temp_hypothermia": _(
        "Too cold. Get warm (blankets, a warm drink) and measure again in 30 minutes; contact your doctor if it "
        "stays below 35 °C."
    ),
    "temp_hyperpyrexia": _("Very high fever. Call %(number)s or go to the clinic now."),
    "temp_fever_high": _(
        "High fever. Drink plenty, rest, and contact your doctor today; go to the clinic if you are confused, "
        "short of breath or have a stiff neck."
    ),
    "temp_fever_moderate": _(
        "Fever. Drink plenty and rest; measure again in 4 hours and tell your doctor if it lasts."
    ),
    "temp_fever_low": _("Slightly raised temperature. Rest, drink plenty and measure again later."),
    "temp_low": _("A little low. Keep warm and measure again later."),
    "within_target": _("Within the target your doctor set for you. Keep it up."),
    "above_target": _TARGET_OUT,
    "below_target": _TARGET_OUT,
}


def category_label(category: str) -> str:
    return str(CATEGORY_LABELS.get(category, category))


def advice_for(category: str, *, emergency_number: str) -> str:
    """Advice for the patient in the active language; the generic words for
    normal readings."""
    text = ADVICE.get(category, _NORMAL)
    return str(text) % {"number": emergency_number} if "%(number)s" in str(text) else str(text)
