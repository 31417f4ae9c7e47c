"""Chart data for the readings pages: each kind's series over time, small
enough for a phone on 2G whatever the period (up to ``MAX_POINTS``
readings as they are, more as day buckets with the lowest, mean and
highest value), and the severity bands to shade behind them, found by
asking flags.py itself (the same rules and the patient's own targets as
the readings' flags). Pure: rows in, JSON-ready dicts out.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

from apps.vitals.flags import RANK, Severity, Target, flag_reading
from apps.vitals.kinds import GLUCOSE, KINDS, MG_DL, MMOL_L, Kind, ValueField, mmol_l_to_mg_dl

MAX_POINTS = 500  # readings sent as they are; beyond, whole-day buckets
DAY_S = 86_400

# The values each kind's chart draws (the first is the one whose bands are
# shaded). A pulse given with a blood pressure is not drawn (another unit).
CHART_FIELDS: dict[str, tuple[str, ...]] = {
    "blood_pressure": ("systolic", "diastolic"),
    "glucose": ("glucose",),
    "heart_rate": ("heart_rate",),
    "spo2": ("spo2",),
    "temperature": ("temperature",),
    "weight": ("weight",),
    "height": ("height",),
}
# Kinds whose rules flag nothing from the value itself (weight: the BMI's
# class, never a severity; height: no rule): no bands.
UNBANDED = frozenset({"weight", "height"})
# When one value of a blood pressure is scanned, the other is one that is
# normal by every rule, so each value's own bands show.
_BP_OTHER = {"systolic": ("diastolic", Decimal(60)), "diastolic": ("systolic", Decimal(100))}
_GLUCOSE_SCAN_CONTEXT = "random"  # the wider in-range band (up to 10.0 mmol/L)


@dataclass(frozen=True)
class ChartRow:
    kind: str
    measured_at: datetime
    values: Mapping[str, Any]  # canonical units, as stored
    severity: str


def _severity_rank(severity: str) -> int:
    try:
        return RANK[Severity(severity)]
    except ValueError:
        return 0


def _scan_step(value_field: ValueField) -> Decimal:
    return Decimal(1) if value_field.decimals == 0 else Decimal("0.1")


def severity_bands(
    *, kind: Kind, field: str, bp_guideline: str, targets: Sequence[Target] = ()
) -> list[tuple[Decimal, Decimal, int]]:
    """The value ranges of one field by severity (low, high, rank), in the
    canonical unit, from the plausible low to the plausible high: every
    step of the range is flagged by ``flag_reading`` and runs of one
    severity joined, the edges halfway between steps."""
    if kind.code in UNBANDED:
        return []
    own_targets = tuple(target for target in targets if target.field == field)
    return list(_bands(kind.code, field, bp_guideline, own_targets))


@functools.lru_cache(maxsize=256)
def _bands(
    code: str, field: str, bp_guideline: str, own_targets: tuple[Target, ...]
) -> tuple[tuple[Decimal, Decimal, int], ...]:
    kind = KINDS[code]
    value_field = kind.field(field)
    step = _scan_step(value_field)
    runs: list[tuple[Decimal, Decimal, int]] = []
    value = value_field.low
    while value <= value_field.high:
        values = {field: value}
        if field in _BP_OTHER:
            other, other_value = _BP_OTHER[field]
            values[other] = other_value
        flag = flag_reading(
            kind=kind.code,
            values=values,
            context=_GLUCOSE_SCAN_CONTEXT if kind.has_context else "",
            bp_guideline=bp_guideline,
            targets=own_targets,
        )
        rank = _severity_rank(flag.severity)
        if runs and runs[-1][2] == rank:
            runs[-1] = (runs[-1][0], value, rank)
        else:
            runs.append((value, value, rank))
        value += step
    half = step / 2
    bands = []
    for index, (first, last, rank) in enumerate(runs):
        low = value_field.low if index == 0 else first - half
        high = value_field.high if index == len(runs) - 1 else last + half
        bands.append((low, high, rank))
    return tuple(bands)


def _display(kind: Kind, value: Decimal | float, glucose_unit: str) -> float:
    """A canonical value in the unit the chart shows."""
    number = Decimal(str(value))
    if kind is GLUCOSE and glucose_unit == MG_DL:
        number = mmol_l_to_mg_dl(number)
    return float(number)


def _decimals(kind: Kind, value_field: ValueField, glucose_unit: str) -> int:
    if kind is GLUCOSE:
        return 0 if glucose_unit == MG_DL else 1
    return value_field.decimals


def _unit(kind: Kind, glucose_unit: str) -> str:
    if kind is GLUCOSE:
        return glucose_unit if glucose_unit in (MMOL_L, MG_DL) else MMOL_L
    return str(kind.fields[0].unit_label)


def _bucket_days(span_s: float, count: int) -> int:
    """0: every reading; else the bucket width in days (at most MAX_POINTS buckets)."""
    if count <= MAX_POINTS:
        return 0
    return max(1, math.ceil(span_s / DAY_S / MAX_POINTS))


def _local_day(moment: datetime, tz: tzinfo) -> int:
    """Days since the epoch, by the calendar of ``tz``."""
    local = moment.astimezone(tz)
    return local.date().toordinal()


def kind_chart(
    *,
    kind: Kind,
    rows: Sequence[ChartRow],
    tz: tzinfo,
    glucose_unit: str,
    bp_guideline: str,
    targets: Sequence[Target] = (),
) -> dict[str, Any]:
    """One kind's chart: times in epoch seconds, one list per value (the
    mean of a bucket), ``min``/``max`` in day buckets, the worst severity
    of each point, and the bands of each value."""
    fields = [kind.field(name) for name in CHART_FIELDS.get(kind.code, kind.field_names)]
    rows = [row for row in rows if all(row.values.get(f.name) is not None for f in fields)]
    span = (rows[-1].measured_at - rows[0].measured_at).total_seconds() if rows else 0.0
    bucket_days = _bucket_days(span, len(rows))
    times: list[int] = []
    severities: list[int] = []
    series: dict[str, dict[str, list[float]]] = {f.name: {"y": [], "min": [], "max": []} for f in fields}
    decimals = {f.name: _decimals(kind, f, glucose_unit) for f in fields}
    for group in _groups(rows, bucket_days=bucket_days, tz=tz):
        times.append(int(sum(row.measured_at.timestamp() for row in group) / len(group)))
        severities.append(max(_severity_rank(row.severity) for row in group))
        for value_field in fields:
            numbers = [_display(kind, row.values[value_field.name], glucose_unit) for row in group]
            places = decimals[value_field.name]
            series[value_field.name]["y"].append(round(sum(numbers) / len(numbers), places + (1 if bucket_days else 0)))
            if bucket_days:
                series[value_field.name]["min"].append(round(min(numbers), places))
                series[value_field.name]["max"].append(round(max(numbers), places))
    return {
        "kind": kind.code,
        "label": str(kind.label),
        "unit": _unit(kind, glucose_unit),
        "count": len(rows),
        "bucket_days": bucket_days,
        "t": times,
        "severity": severities,
        "series": [
            {
                "field": value_field.name,
                "label": str(value_field.label),
                "y": series[value_field.name]["y"],
                **(
                    {"min": series[value_field.name]["min"], "max": series[value_field.name]["max"]}
                    if bucket_days
                    else {}
                ),
                "bands": [
                    [
                        round(_display(kind, low, glucose_unit), 2),
                        round(_display(kind, high, glucose_unit), 2),
                        rank,
                    ]
                    for low, high, rank in severity_bands(
                        kind=kind, field=value_field.name, bp_guideline=bp_guideline, targets=targets
                    )
                ],
            }
            for value_field in fields
        ],
    }


def _groups(rows: Sequence[ChartRow], *, bucket_days: int, tz: tzinfo) -> Iterable[list[ChartRow]]:
    if not bucket_days:
        for row in rows:
            yield [row]
        return
    group: list[ChartRow] = []
    group_key: int | None = None
    for row in rows:
        key = _local_day(row.measured_at, tz) // bucket_days
        if group and key != group_key:
            yield group
            group = []
        group_key = key
        group.append(row)
    if group:
        yield group


def charts_data(
    *,
    rows: Iterable[ChartRow],
    tz: tzinfo,
    glucose_unit: str,
    bp_guideline: str,
    targets_by_kind: Mapping[str, Sequence[Target]],
) -> list[dict[str, Any]]:
    """A chart per kind that has readings, in the kinds' order; ``rows``
    oldest first."""
    by_kind: dict[str, list[ChartRow]] = {}
    for row in rows:
        by_kind.setdefault(row.kind, []).append(row)
    return [
        kind_chart(
            kind=kind,
            rows=by_kind[code],
            tz=tz,
            glucose_unit=glucose_unit,
            bp_guideline=bp_guideline,
            targets=targets_by_kind.get(code, ()),
        )
        for code, kind in KINDS.items()
        if by_kind.get(code)
    ]
