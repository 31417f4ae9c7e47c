"""Slot computation: pure functions over plain data, no ORM.

The ORM layer (selectors) turns AvailabilityRule, TimeOff, BookingPolicy and
Appointment rows into the dataclasses below and calls ``compute_slots``.
All datetimes given and returned are timezone-aware; rule times are wall-clock
times in the clinic's zone.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class RuleSpec:
    """A weekly rule: on ``weekdays`` (0 = Monday) from ``start`` to ``end``
    (clinic wall-clock), slots of ``slot_minutes`` with ``buffer_minutes``
    between them, valid on dates ``valid_from``..``valid_until`` (inclusive;
    None = open)."""

    weekdays: frozenset[int]
    start: time
    end: time
    slot_minutes: int
    buffer_minutes: int
    modes: frozenset[str]
    valid_from: date | None = None
    valid_until: date | None = None


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class PolicySpec:
    min_notice: timedelta
    max_ahead: timedelta


@dataclass(frozen=True)
class Slot:
    start: datetime
    end: datetime
    modes: frozenset[str]


MAX_WINDOW = timedelta(days=92)
"""Longest window ``compute_slots`` accepts; a longer one is refused so one
request can't make the server enumerate years of slots."""


def compute_slots(
    *,
    rules: Sequence[RuleSpec],
    zone: ZoneInfo,
    window_start: datetime,
    window_end: datetime,
    now: datetime,
    policy: PolicySpec,
    time_off: Sequence[Interval] = (),
    busy: Sequence[Interval] = (),
) -> list[Slot]:
    """The bookable slots starting in [window_start, window_end), sorted by
    start, as datetimes in ``zone``.

    Slots are laid out in clinic wall-clock time, so a 09:00 rule gives 09:00
    on both sides of a daylight-saving change. A slot whose start or end falls
    in a spring-forward gap is skipped; an ambiguous (fall-back) wall time is
    read as its first occurrence (fold=0), and any slot whose real duration
    isn't ``slot_minutes`` is skipped. Slots overlapping ``time_off`` or
    ``busy`` are left out, and so are those starting before
    ``now + policy.min_notice`` or after ``now + policy.max_ahead``. Rules that
    give the same start are merged into one slot with the union of their
    modes.
    """
    _require_aware(window_start=window_start, window_end=window_end, now=now)
    _validate_rules(rules)
    blocked = _Blocked.build(time_off=time_off, busy=busy)
    window_start_utc = window_start.astimezone(UTC)
    window_end_utc = window_end.astimezone(UTC)
    if window_end_utc <= window_start_utc:
        raise ValueError(
            f"window_end ({window_end.isoformat()}) must be after window_start ({window_start.isoformat()})"
        )
    if window_end_utc - window_start_utc > MAX_WINDOW:
        raise ValueError(f"the window is longer than {MAX_WINDOW.days} days")

    now_utc = now.astimezone(UTC)
    earliest = max(window_start_utc, now_utc + policy.min_notice)
    latest = now_utc + policy.max_ahead  # inclusive
    last_instant = min(window_end_utc - _RESOLUTION, latest)
    if earliest > last_instant:
        return []
    return _slots_on_days(
        rules=rules,
        zone=zone,
        first_day=earliest.astimezone(zone).date(),
        last_day=last_instant.astimezone(zone).date(),
        earliest=earliest,
        latest=latest,
        before=window_end_utc,
        blocked=blocked,
    )


def slot_is_offered(
    *,
    rules: Sequence[RuleSpec],
    zone: ZoneInfo,
    start: datetime,
    end: datetime,
    now: datetime,
    policy: PolicySpec,
    time_off: Sequence[Interval] = (),
    busy: Sequence[Interval] = (),
) -> frozenset[str] | None:
    """The modes of the slot [start, end) if ``compute_slots`` would offer
    exactly that slot, else None. Only the clinic-local day of ``start`` is
    computed."""
    _require_aware(start=start, end=end, now=now)
    _validate_rules(rules)
    blocked = _Blocked.build(time_off=time_off, busy=busy)
    start_utc = start.astimezone(UTC)
    end_utc = end.astimezone(UTC)
    now_utc = now.astimezone(UTC)
    day = start_utc.astimezone(zone).date()
    slots = _slots_on_days(
        rules=rules,
        zone=zone,
        first_day=day,
        last_day=day,
        earliest=now_utc + policy.min_notice,
        latest=now_utc + policy.max_ahead,
        before=None,
        blocked=blocked,
    )
    for slot in slots:
        if slot.start.astimezone(UTC) == start_utc and slot.end.astimezone(UTC) == end_utc:
            return slot.modes
    return None


# Internals. Instants are compared as UTC datetimes: Python compares two
# datetimes that share a tzinfo by their wall time (ignoring fold), which is
# wrong around a fall-back change. _rule_day_slots relies on that same rule on
# purpose, for wall-clock arithmetic.

_RESOLUTION = timedelta(microseconds=1)
_WEEKDAYS = frozenset(range(7))


@dataclass(frozen=True)
class _Blocked:
    """Busy and time-off intervals merged into disjoint, sorted UTC runs, so
    an overlap test is one bisect."""

    starts: list[datetime]
    ends: list[datetime]

    @classmethod
    def build(cls, *, time_off: Sequence[Interval], busy: Sequence[Interval]) -> _Blocked:
        spans: list[tuple[datetime, datetime]] = []
        for name, intervals in (("time_off", time_off), ("busy", busy)):
            for index, interval in enumerate(intervals):
                if interval.start.utcoffset() is None or interval.end.utcoffset() is None:
                    _require_aware(**{f"{name}[{index}].start": interval.start, f"{name}[{index}].end": interval.end})
                span_start = interval.start.astimezone(UTC)
                span_end = interval.end.astimezone(UTC)
                if span_end < span_start:
                    raise ValueError(f"{name}[{index}] ends before it starts")
                if span_end > span_start:  # an empty interval blocks nothing
                    spans.append((span_start, span_end))
        spans.sort()
        starts: list[datetime] = []
        ends: list[datetime] = []
        for span_start, span_end in spans:
            if ends and span_start <= ends[-1]:
                ends[-1] = max(ends[-1], span_end)
            else:
                starts.append(span_start)
                ends.append(span_end)
        return cls(starts=starts, ends=ends)

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """Whether [start, end) overlaps a blocked run (half-open: touching
        isn't overlapping)."""
        index = bisect_right(self.ends, start)  # the first run ending after start
        return index < len(self.starts) and self.starts[index] < end


def _slots_on_days(
    *,
    rules: Sequence[RuleSpec],
    zone: ZoneInfo,
    first_day: date,
    last_day: date,
    earliest: datetime,
    latest: datetime,
    before: datetime | None,
    blocked: _Blocked,
) -> list[Slot]:
    """Slots of the clinic-local days first_day..last_day starting in
    [earliest, before) and not after ``latest`` (all UTC)."""
    rules_by_weekday: dict[int, list[RuleSpec]] = {weekday: [] for weekday in _WEEKDAYS}
    for rule in rules:
        for weekday in rule.weekdays:
            rules_by_weekday[weekday].append(rule)

    by_start: dict[datetime, tuple[datetime, Slot]] = {}  # UTC start -> (UTC end, slot)
    day = first_day
    while day <= last_day:
        for rule in rules_by_weekday[day.weekday()]:
            if (rule.valid_from is not None and day < rule.valid_from) or (
                rule.valid_until is not None and day > rule.valid_until
            ):
                continue
            for start_utc, end_utc, slot in _rule_day_slots(rule=rule, zone=zone, day=day):
                if start_utc < earliest or start_utc > latest or (before is not None and start_utc >= before):
                    continue
                if blocked.overlaps(start_utc, end_utc):
                    continue
                if (existing := by_start.get(start_utc)) is not None:
                    end_utc, slot = _merged(existing, (end_utc, slot))
                by_start[start_utc] = (end_utc, slot)
        day += timedelta(days=1)
    return [by_start[start][1] for start in sorted(by_start)]


def _rule_day_slots(*, rule: RuleSpec, zone: ZoneInfo, day: date) -> Iterator[tuple[datetime, datetime, Slot]]:
    """The rule's slots on one clinic-local day as (UTC start, UTC end, slot),
    before any filtering, with DST gaps and wrong-length slots dropped."""
    length = timedelta(minutes=rule.slot_minutes)
    step = timedelta(minutes=rule.slot_minutes + rule.buffer_minutes)
    # Aware datetimes sharing a tzinfo add, subtract and compare by wall time
    # (fold ignored), which is the wall-clock arithmetic wanted here: 09:00 +
    # 30 min is 09:30 local even on a change day. Results have fold=0, the
    # first occurrence of an ambiguous time.
    wall_start = datetime.combine(day, rule.start, tzinfo=zone)
    last_start = datetime.combine(day, rule.end, tzinfo=zone) - length
    while wall_start <= last_start:
        wall_end = wall_start + length
        start_utc = _utc_if_exists(wall_start)
        end_utc = _utc_if_exists(wall_end)
        # None: the wall time is in a spring-forward gap. A wrong real length:
        # the slot spans a change (e.g. it ends after a fall-back).
        if start_utc is not None and end_utc is not None and end_utc - start_utc == length:
            yield start_utc, end_utc, Slot(start=wall_start, end=wall_end, modes=rule.modes)
        wall_start += step


def _utc_if_exists(wall: datetime) -> datetime | None:
    """``wall`` as UTC, or None when that wall time doesn't exist in its zone:
    converting to UTC and back gives another wall time (``==`` between
    datetimes sharing a tzinfo compares wall times)."""
    as_utc = wall.astimezone(UTC)
    if as_utc.astimezone(wall.tzinfo) != wall:
        return None
    return as_utc


def _merged(first: tuple[datetime, Slot], second: tuple[datetime, Slot]) -> tuple[datetime, Slot]:
    """Two rules' slots at the same start as one: the union of the modes, and
    the shorter of the two when the rules' slot lengths differ (the shorter
    slot is free whenever the longer one is)."""
    end_utc, shorter = min(first, second, key=lambda entry: entry[0])
    return end_utc, Slot(start=shorter.start, end=shorter.end, modes=first[1].modes | second[1].modes)


def _require_aware(**values: datetime) -> None:
    for name, value in values.items():
        if value.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware (got naive {value.isoformat()})")


def _validate_rules(rules: Sequence[RuleSpec]) -> None:
    for index, rule in enumerate(rules):
        where = f"rules[{index}]"
        if rule.slot_minutes <= 0:
            raise ValueError(f"{where}: slot_minutes must be positive (got {rule.slot_minutes})")
        if rule.buffer_minutes < 0:
            raise ValueError(f"{where}: buffer_minutes must not be negative (got {rule.buffer_minutes})")
        if rule.start.tzinfo is not None or rule.end.tzinfo is not None:
            raise ValueError(f"{where}: start and end are clinic wall-clock times and must not carry a tzinfo")
        if rule.start >= rule.end:
            raise ValueError(f"{where}: start ({rule.start}) must be before end ({rule.end})")
        if not rule.weekdays <= _WEEKDAYS:
            raise ValueError(f"{where}: weekdays must be in 0..6, 0 = Monday (got {sorted(rule.weekdays)})")
