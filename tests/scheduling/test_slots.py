"""compute_slots and slot_is_offered: pure functions, no database."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from apps.scheduling.slots import (
    Interval,
    PolicySpec,
    RuleSpec,
    Slot,
    compute_slots,
    slot_is_offered,
)

pytestmark = pytest.mark.sqlite

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")

WEEKDAYS = frozenset(range(5))
EVERY_DAY = frozenset(range(7))
VIDEO = frozenset({"video"})
IN_PERSON = frozenset({"in_person"})
OPEN_POLICY = PolicySpec(min_notice=timedelta(0), max_ahead=timedelta(days=365))

# Monday 2026-06-01 in Shanghai; `now` is early in 2026 (before both DST changes) unless a test says otherwise.
MONDAY = date(2026, 6, 1)
EARLIER = datetime(2026, 1, 5, 8, 0, tzinfo=SHANGHAI)


def at(zone: ZoneInfo, day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


def rule(
    *,
    weekdays: frozenset[int] = WEEKDAYS,
    start: time = time(9),
    end: time = time(12),
    slot_minutes: int = 30,
    buffer_minutes: int = 10,
    modes: frozenset[str] = VIDEO,
    valid_from: date | None = None,
    valid_until: date | None = None,
) -> RuleSpec:
    return RuleSpec(
        weekdays=weekdays,
        start=start,
        end=end,
        slot_minutes=slot_minutes,
        buffer_minutes=buffer_minutes,
        modes=modes,
        valid_from=valid_from,
        valid_until=valid_until,
    )


def slots_for(
    rules: Sequence[RuleSpec],
    *,
    zone: ZoneInfo = SHANGHAI,
    first_day: date = MONDAY,
    days: int = 1,
    now: datetime = EARLIER,
    policy: PolicySpec = OPEN_POLICY,
    **kwargs: Any,
) -> list[Slot]:
    """The slots of ``days`` local days from ``first_day`` (midnight to midnight in ``zone``)."""
    return compute_slots(
        rules=rules,
        zone=zone,
        window_start=at(zone, first_day, 0),
        window_end=at(zone, first_day + timedelta(days=days), 0),
        now=now,
        policy=policy,
        **kwargs,
    )


def walls(slots: Sequence[Slot]) -> list[str]:
    """'HH:MM' local start times (in each slot's own zone)."""
    return [slot.start.strftime("%H:%M") for slot in slots]


def walls_by_day(slots: Sequence[Slot]) -> dict[date, list[str]]:
    by_day: dict[date, list[str]] = {}
    for slot in slots:
        by_day.setdefault(slot.start.date(), []).append(slot.start.strftime("%H:%M"))
    return by_day


def real_length(slot: Slot) -> timedelta:
    # Subtracting two datetimes with the same tzinfo ignores their offsets; go through UTC.
    return slot.end.astimezone(UTC) - slot.start.astimezone(UTC)


# A plain week


def test_it_lays_out_a_plain_week_with_buffers() -> None:
    slots = slots_for([rule()], days=7)

    by_day = walls_by_day(slots)
    assert list(by_day) == [MONDAY + timedelta(days=i) for i in range(5)]  # no Saturday or Sunday
    for day_walls in by_day.values():
        assert day_walls == ["09:00", "09:40", "10:20", "11:00"]  # 11:40 would end at 12:10
    for slot in slots:
        assert slot.start.tzinfo is SHANGHAI
        assert slot.end.tzinfo is SHANGHAI
        assert real_length(slot) == timedelta(minutes=30)
        assert slot.modes == VIDEO
    assert [slot.start for slot in slots] == sorted(slot.start for slot in slots)


def test_it_keeps_a_slot_ending_exactly_at_the_rules_end() -> None:
    slots = slots_for([rule(end=time(12, 10))])

    assert walls(slots) == ["09:00", "09:40", "10:20", "11:00", "11:40"]
    assert slots[-1].end == at(SHANGHAI, MONDAY, 12, 10)


def test_it_uses_valid_from_and_valid_until_as_inclusive_dates() -> None:
    bounded = rule(valid_from=MONDAY + timedelta(days=1), valid_until=MONDAY + timedelta(days=3))

    slots = slots_for([bounded], days=7)

    assert sorted(walls_by_day(slots)) == [MONDAY + timedelta(days=i) for i in (1, 2, 3)]


def test_it_applies_open_ended_validity() -> None:
    from_wednesday = rule(valid_from=MONDAY + timedelta(days=2))
    until_tuesday = rule(valid_until=MONDAY + timedelta(days=1), modes=IN_PERSON)

    slots = slots_for([from_wednesday, until_tuesday], days=7)

    modes_by_day = {slot.start.date(): slot.modes for slot in slots}
    assert modes_by_day == {
        MONDAY: IN_PERSON,
        MONDAY + timedelta(days=1): IN_PERSON,
        MONDAY + timedelta(days=2): VIDEO,
        MONDAY + timedelta(days=3): VIDEO,
        MONDAY + timedelta(days=4): VIDEO,
    }


def test_it_merges_rules_that_give_the_same_start() -> None:
    morning_video = rule(start=time(9), end=time(11), buffer_minutes=0)
    late_morning_in_person = rule(start=time(10), end=time(12), buffer_minutes=0, modes=IN_PERSON)
    saturday_clinic = rule(weekdays=frozenset({5}), start=time(10), end=time(11), buffer_minutes=0, modes=IN_PERSON)

    slots = slots_for([late_morning_in_person, morning_video, saturday_clinic])

    assert walls(slots) == ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30"]
    assert [slot.modes for slot in slots] == [
        VIDEO,
        VIDEO,
        VIDEO | IN_PERSON,
        VIDEO | IN_PERSON,
        IN_PERSON,
        IN_PERSON,
    ]


def test_it_merges_same_start_slots_of_different_lengths_into_the_shorter() -> None:
    hour_long = rule(start=time(9), end=time(10), slot_minutes=60, buffer_minutes=0, modes=IN_PERSON)
    half_hour = rule(start=time(9), end=time(9, 30), slot_minutes=30, buffer_minutes=0)

    slots = slots_for([hour_long, half_hour])

    assert slots == [Slot(start=at(SHANGHAI, MONDAY, 9), end=at(SHANGHAI, MONDAY, 9, 30), modes=VIDEO | IN_PERSON)]


# Time off and busy intervals


def test_it_removes_slots_overlapping_time_off_including_partial_overlaps() -> None:
    # 09:50-10:30 cuts into the end of 09:40-10:10 and the start of 10:20-10:50.
    time_off = [Interval(at(SHANGHAI, MONDAY, 9, 50), at(SHANGHAI, MONDAY, 10, 30))]

    slots = slots_for([rule()], time_off=time_off)

    assert walls(slots) == ["09:00", "11:00"]


def test_it_removes_slots_covered_by_a_long_time_off() -> None:
    holiday = [Interval(at(SHANGHAI, MONDAY, 0), at(SHANGHAI, MONDAY + timedelta(days=2), 0))]

    slots = slots_for([rule()], days=3, time_off=holiday)

    assert list(walls_by_day(slots)) == [MONDAY + timedelta(days=2)]


def test_it_removes_busy_slots() -> None:
    busy = [Interval(at(SHANGHAI, MONDAY, 9, 40), at(SHANGHAI, MONDAY, 10, 10))]

    slots = slots_for([rule()], busy=busy)

    assert walls(slots) == ["09:00", "10:20", "11:00"]


def test_it_keeps_a_slot_exactly_adjacent_to_a_busy_interval() -> None:
    busy = [
        Interval(at(SHANGHAI, MONDAY, 8), at(SHANGHAI, MONDAY, 9)),  # ends as 09:00 starts
        Interval(at(SHANGHAI, MONDAY, 11, 30), at(SHANGHAI, MONDAY, 12)),  # starts as 11:00-11:30 ends
        Interval(at(SHANGHAI, MONDAY, 10, 10), at(SHANGHAI, MONDAY, 10, 20)),  # exactly the buffer
    ]

    slots = slots_for([rule()], busy=busy)

    assert walls(slots) == ["09:00", "09:40", "10:20", "11:00"]


def test_it_accepts_unsorted_overlapping_intervals_in_any_zone() -> None:
    busy = [
        Interval(at(NEW_YORK, MONDAY - timedelta(days=1), 23), at(NEW_YORK, MONDAY, 0)),  # Shanghai 11:00-12:00
        Interval(at(SHANGHAI, MONDAY, 9, 45), at(SHANGHAI, MONDAY, 9, 50)),
        Interval(at(SHANGHAI, MONDAY, 9, 30), at(SHANGHAI, MONDAY, 9, 50)),
        Interval(datetime(2026, 6, 1, 1, 30, tzinfo=UTC), datetime(2026, 6, 1, 1, 30, tzinfo=UTC)),  # empty
    ]

    slots = slots_for([rule()], busy=busy)

    assert walls(slots) == ["09:00", "10:20"]


def test_it_matches_a_brute_force_overlap_check() -> None:
    rng = random.Random(20260601)
    rules = [rule(start=time(8), end=time(18), slot_minutes=20, buffer_minutes=5)]
    all_slots = slots_for(rules, days=7)
    day_start = at(SHANGHAI, MONDAY, 0)
    busy = []
    for _ in range(60):
        start = day_start + timedelta(minutes=rng.randrange(0, 7 * 24 * 60))
        busy.append(Interval(start, start + timedelta(minutes=rng.randrange(1, 90))))
    time_off = busy[:10]

    slots = slots_for(rules, days=7, busy=busy[10:], time_off=time_off)

    expected = [s for s in all_slots if not any(s.start < b.end and b.start < s.end for b in busy)]
    assert slots == expected
    assert 0 < len(slots) < len(all_slots)


# Policy and window


def test_it_keeps_a_slot_exactly_at_the_minimum_notice() -> None:
    now = at(SHANGHAI, MONDAY, 8)

    slots = slots_for([rule()], now=now, policy=PolicySpec(min_notice=timedelta(hours=1), max_ahead=timedelta(days=30)))

    assert walls(slots)[0] == "09:00"


def test_it_drops_a_slot_inside_the_minimum_notice() -> None:
    now = at(SHANGHAI, MONDAY, 8, 0) + timedelta(microseconds=1)

    slots = slots_for([rule()], now=now, policy=PolicySpec(min_notice=timedelta(hours=1), max_ahead=timedelta(days=30)))

    assert walls(slots) == ["09:40", "10:20", "11:00"]


def test_it_drops_slots_already_started_or_past() -> None:
    slots = slots_for([rule()], now=at(SHANGHAI, MONDAY, 9, 10), policy=OPEN_POLICY)

    assert walls(slots) == ["09:40", "10:20", "11:00"]


def test_it_keeps_a_slot_exactly_at_the_maximum_ahead() -> None:
    now = at(SHANGHAI, MONDAY, 8)

    slots = slots_for([rule()], now=now, policy=PolicySpec(min_notice=timedelta(0), max_ahead=timedelta(hours=3)))

    assert walls(slots) == ["09:00", "09:40", "10:20", "11:00"]


def test_it_drops_a_slot_beyond_the_maximum_ahead() -> None:
    now = at(SHANGHAI, MONDAY, 8)
    policy = PolicySpec(min_notice=timedelta(0), max_ahead=timedelta(hours=3) - timedelta(microseconds=1))

    slots = slots_for([rule()], now=now, policy=policy, days=7)

    assert walls(slots) == ["09:00", "09:40", "10:20"]


def test_it_returns_nothing_when_the_policy_leaves_no_room() -> None:
    now = at(SHANGHAI, MONDAY, 8)
    policy = PolicySpec(min_notice=timedelta(days=2), max_ahead=timedelta(days=1))

    assert slots_for([rule()], now=now, policy=policy, days=7) == []


def test_it_keeps_only_slots_starting_inside_the_window() -> None:
    slots = compute_slots(
        rules=[rule()],
        zone=SHANGHAI,
        window_start=at(SHANGHAI, MONDAY, 9, 10),  # 09:00-09:30 started before the window
        window_end=at(SHANGHAI, MONDAY, 11),  # half-open: 11:00 is outside
        now=EARLIER,
        policy=OPEN_POLICY,
    )

    assert walls(slots) == ["09:40", "10:20"]


def test_it_includes_a_slot_starting_exactly_at_the_window_start() -> None:
    slots = compute_slots(
        rules=[rule()],
        zone=SHANGHAI,
        window_start=at(SHANGHAI, MONDAY, 9, 40),
        window_end=at(SHANGHAI, MONDAY, 11) + timedelta(microseconds=1),
        now=EARLIER,
        policy=OPEN_POLICY,
    )

    assert walls(slots) == ["09:40", "10:20", "11:00"]


# Daylight saving time (Europe/Berlin: 2026-03-29 02:00 -> 03:00, 2026-10-25 03:00 -> 02:00)

SPRING_FORWARD = date(2026, 3, 29)
FALL_BACK = date(2026, 10, 25)
BERLIN_DAY = rule(weekdays=EVERY_DAY, buffer_minutes=0)
BERLIN_DAY_WALLS = ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30"]


def test_it_keeps_wall_clock_times_across_the_spring_change() -> None:
    slots = slots_for([BERLIN_DAY], zone=BERLIN, first_day=SPRING_FORWARD - timedelta(days=1), days=3)

    assert walls_by_day(slots) == {
        SPRING_FORWARD - timedelta(days=1): BERLIN_DAY_WALLS,
        SPRING_FORWARD: BERLIN_DAY_WALLS,
        SPRING_FORWARD + timedelta(days=1): BERLIN_DAY_WALLS,
    }
    for slot in slots:
        assert real_length(slot) == timedelta(minutes=30)
    first_each_day = [slot.start.astimezone(UTC).strftime("%H:%M") for slot in slots if slot.start.time() == time(9)]
    assert first_each_day == ["08:00", "07:00", "07:00"]  # CET, then CEST


def test_it_keeps_wall_clock_times_across_the_autumn_change() -> None:
    slots = slots_for([BERLIN_DAY], zone=BERLIN, first_day=FALL_BACK - timedelta(days=1), days=3)

    assert walls_by_day(slots) == {
        FALL_BACK - timedelta(days=1): BERLIN_DAY_WALLS,
        FALL_BACK: BERLIN_DAY_WALLS,
        FALL_BACK + timedelta(days=1): BERLIN_DAY_WALLS,
    }
    for slot in slots:
        assert real_length(slot) == timedelta(minutes=30)
    first_each_day = [slot.start.astimezone(UTC).strftime("%H:%M") for slot in slots if slot.start.time() == time(9)]
    assert first_each_day == ["07:00", "08:00", "08:00"]  # CEST, then CET


def test_it_skips_slots_in_the_spring_forward_gap() -> None:
    night = rule(weekdays=EVERY_DAY, start=time(1), end=time(4), buffer_minutes=0)

    slots = slots_for([night], zone=BERLIN, first_day=SPRING_FORWARD)

    # 01:30-02:00 ends in the gap (02:00 doesn't exist), 02:00 and 02:30 start in it.
    assert walls(slots) == ["01:00", "03:00", "03:30"]
    for slot in slots:
        assert real_length(slot) == timedelta(minutes=30)


def test_it_skips_a_slot_spanning_the_gap_whose_real_length_is_wrong() -> None:
    # 01:30-03:00 both exist, but only 30 real minutes pass between them.
    long_slot = rule(weekdays=EVERY_DAY, start=time(1, 30), end=time(3), slot_minutes=90, buffer_minutes=0)

    assert slots_for([long_slot], zone=BERLIN, first_day=SPRING_FORWARD) == []
    assert len(slots_for([long_slot], zone=BERLIN, first_day=SPRING_FORWARD + timedelta(days=1))) == 1


def test_it_uses_the_first_occurrence_of_ambiguous_times_in_the_fall_back_overlap() -> None:
    night = rule(weekdays=EVERY_DAY, start=time(1), end=time(4), buffer_minutes=0)

    slots = slots_for([night], zone=BERLIN, first_day=FALL_BACK)

    # 02:30-03:00 would last 90 real minutes (02:30 CEST to 03:00 CET): skipped.
    assert walls(slots) == ["01:00", "01:30", "02:00", "03:00", "03:30"]
    assert [slot.start.astimezone(UTC).strftime("%H:%M") for slot in slots] == [
        "23:00",
        "23:30",
        "00:00",  # 02:00 CEST, the first 02:00
        "02:00",
        "02:30",
    ]
    for slot in slots:
        assert real_length(slot) == timedelta(minutes=30)
    for earlier, later in pairwise(slots):
        assert earlier.end.astimezone(UTC) <= later.start.astimezone(UTC)


def test_it_compares_instants_not_wall_times_at_the_fall_back_overlap() -> None:
    night = rule(weekdays=EVERY_DAY, start=time(1), end=time(4), buffer_minutes=0)
    # Busy during the second 02:00-02:30 (CET): the first 02:00-02:30 (CEST) is still free.
    second_pass = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)
    busy = [Interval(second_pass, second_pass + timedelta(minutes=30))]

    slots = slots_for([night], zone=BERLIN, first_day=FALL_BACK, busy=busy)

    assert walls(slots) == ["01:00", "01:30", "02:00", "03:00", "03:30"]


# Another zone


def test_it_shows_a_viewer_in_another_zone_the_same_instants() -> None:
    in_shanghai = slots_for([rule()], days=7)
    in_new_york = compute_slots(
        rules=[rule()],
        zone=SHANGHAI,
        window_start=at(SHANGHAI, MONDAY, 0).astimezone(NEW_YORK),
        window_end=at(SHANGHAI, MONDAY + timedelta(days=7), 0).astimezone(NEW_YORK),
        now=EARLIER.astimezone(NEW_YORK),
        policy=OPEN_POLICY,
    )

    assert in_new_york == in_shanghai
    first = in_new_york[0].start.astimezone(NEW_YORK)
    assert (first.date(), first.strftime("%H:%M")) == (MONDAY - timedelta(days=1), "21:00")  # Sunday evening EDT


def test_it_cuts_a_window_given_in_the_viewers_zone_at_the_viewers_midnight() -> None:
    # Monday 00:00-24:00 in New York is Monday 12:00 to Tuesday 12:00 in Shanghai.
    slots = compute_slots(
        rules=[rule(start=time(9), end=time(15))],
        zone=SHANGHAI,
        window_start=at(NEW_YORK, MONDAY, 0),
        window_end=at(NEW_YORK, MONDAY + timedelta(days=1), 0),
        now=EARLIER,
        policy=OPEN_POLICY,
    )

    assert [(s.start.date(), s.start.strftime("%H:%M")) for s in slots] == [
        (MONDAY, "12:20"),
        (MONDAY, "13:00"),
        (MONDAY, "13:40"),
        (MONDAY, "14:20"),
        (MONDAY + timedelta(days=1), "09:00"),
        (MONDAY + timedelta(days=1), "09:40"),
        (MONDAY + timedelta(days=1), "10:20"),
        (MONDAY + timedelta(days=1), "11:00"),
        (MONDAY + timedelta(days=1), "11:40"),
    ]


# Validation

NAIVE = datetime(2026, 6, 1, 9, 0)  # noqa: DTZ001 - deliberately naive


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"window_start": NAIVE}, "window_start must be timezone-aware"),
        ({"window_end": NAIVE}, "window_end must be timezone-aware"),
        ({"now": NAIVE}, "now must be timezone-aware"),
        ({"busy": [Interval(NAIVE, at(SHANGHAI, MONDAY, 10))]}, r"busy\[0\].start must be timezone-aware"),
        ({"time_off": [Interval(at(SHANGHAI, MONDAY, 8), NAIVE)]}, r"time_off\[0\].end must be timezone-aware"),
        ({"rules": [rule(slot_minutes=0)]}, "slot_minutes must be positive"),
        ({"rules": [rule(buffer_minutes=-1)]}, "buffer_minutes must not be negative"),
        ({"rules": [rule(start=time(12), end=time(12))]}, "start .* must be before end"),
        ({"rules": [rule(start=time(13), end=time(12))]}, "start .* must be before end"),
        ({"rules": [rule(), rule(weekdays=frozenset({7}))]}, r"rules\[1\]: weekdays must be in 0..6"),
        ({"rules": [rule(weekdays=frozenset({-1}))]}, "weekdays must be in 0..6"),
        ({"window_end": at(SHANGHAI, MONDAY, 0)}, "window_end .* must be after window_start"),
        ({"window_end": at(SHANGHAI, MONDAY, 0) - timedelta(days=1)}, "must be after window_start"),
        ({"window_end": at(SHANGHAI, MONDAY, 0) + timedelta(days=92, microseconds=1)}, "longer than 92 days"),
    ],
)
def test_it_refuses_invalid_input(overrides: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {
        "rules": [rule()],
        "zone": SHANGHAI,
        "window_start": at(SHANGHAI, MONDAY, 0),
        "window_end": at(SHANGHAI, MONDAY, 0) + timedelta(days=7),
        "now": EARLIER,
        "policy": OPEN_POLICY,
    } | overrides

    with pytest.raises(ValueError, match=message):
        compute_slots(**arguments)


def test_it_accepts_a_window_of_exactly_92_days() -> None:
    slots = slots_for([rule()], days=92)

    assert len(walls_by_day(slots)) == 66  # 13 weeks and 1 day, Monday to Monday


# slot_is_offered


def offered(start: datetime, end: datetime, **kwargs: Any) -> frozenset[str] | None:
    arguments: dict[str, Any] = {
        "rules": [rule()],
        "zone": SHANGHAI,
        "now": EARLIER,
        "policy": OPEN_POLICY,
    } | kwargs
    return slot_is_offered(start=start, end=end, **arguments)


def test_it_offers_a_computed_slot() -> None:
    assert offered(at(SHANGHAI, MONDAY, 9, 40), at(SHANGHAI, MONDAY, 10, 10)) == VIDEO


def test_it_offers_a_slot_asked_for_in_another_zone() -> None:
    start = at(SHANGHAI, MONDAY, 9, 40).astimezone(NEW_YORK)  # Sunday 21:40 in New York

    assert offered(start, start + timedelta(minutes=30)) == VIDEO


def test_it_offers_the_merged_modes() -> None:
    rules = [rule(), rule(modes=IN_PERSON)]

    assert offered(at(SHANGHAI, MONDAY, 9), at(SHANGHAI, MONDAY, 9, 30), rules=rules) == VIDEO | IN_PERSON


def test_it_refuses_a_slot_of_the_wrong_length() -> None:
    assert offered(at(SHANGHAI, MONDAY, 9), at(SHANGHAI, MONDAY, 9, 40)) is None
    assert offered(at(SHANGHAI, MONDAY, 9), at(SHANGHAI, MONDAY, 9, 20)) is None


def test_it_refuses_an_off_grid_start() -> None:
    assert offered(at(SHANGHAI, MONDAY, 9, 10), at(SHANGHAI, MONDAY, 9, 40)) is None
    assert offered(at(SHANGHAI, MONDAY, 9, 30), at(SHANGHAI, MONDAY, 10)) is None  # the grid has a buffer


def test_it_refuses_a_slot_in_time_off() -> None:
    time_off = [Interval(at(SHANGHAI, MONDAY, 0), at(SHANGHAI, MONDAY, 10))]

    assert offered(at(SHANGHAI, MONDAY, 9, 40), at(SHANGHAI, MONDAY, 10, 10), time_off=time_off) is None
    assert offered(at(SHANGHAI, MONDAY, 10, 20), at(SHANGHAI, MONDAY, 10, 50), time_off=time_off) == VIDEO


def test_it_refuses_a_busy_slot() -> None:
    busy = [Interval(at(SHANGHAI, MONDAY, 9, 40), at(SHANGHAI, MONDAY, 10, 10))]

    assert offered(at(SHANGHAI, MONDAY, 9, 40), at(SHANGHAI, MONDAY, 10, 10), busy=busy) is None


def test_it_refuses_a_slot_outside_the_booking_policy() -> None:
    now = at(SHANGHAI, MONDAY, 8)
    policy = PolicySpec(min_notice=timedelta(hours=1, minutes=1), max_ahead=timedelta(hours=2, minutes=20))

    assert offered(at(SHANGHAI, MONDAY, 9), at(SHANGHAI, MONDAY, 9, 30), now=now, policy=policy) is None
    assert offered(at(SHANGHAI, MONDAY, 9, 40), at(SHANGHAI, MONDAY, 10, 10), now=now, policy=policy) == VIDEO
    assert offered(at(SHANGHAI, MONDAY, 10, 20), at(SHANGHAI, MONDAY, 10, 50), now=now, policy=policy) == VIDEO
    assert offered(at(SHANGHAI, MONDAY, 11), at(SHANGHAI, MONDAY, 11, 30), now=now, policy=policy) is None


def test_it_refuses_a_slot_on_a_day_without_rules() -> None:
    saturday = MONDAY + timedelta(days=5)

    assert offered(at(SHANGHAI, saturday, 9), at(SHANGHAI, saturday, 9, 30)) is None


def test_it_refuses_a_slot_skipped_at_the_spring_forward_gap() -> None:
    night = rule(weekdays=EVERY_DAY, start=time(1), end=time(4), buffer_minutes=0)
    half_past_one = datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN)
    three = datetime(2026, 3, 29, 3, 0, tzinfo=BERLIN)
    assert three.astimezone(UTC) - half_past_one.astimezone(UTC) == timedelta(minutes=30)

    # 01:30-02:00 was never offered (02:00 doesn't exist), even as the 30 real minutes up to 03:00.
    assert offered(half_past_one, three, rules=[night], zone=BERLIN) is None
    assert offered(three, datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN), rules=[night], zone=BERLIN) == VIDEO


def test_it_refuses_a_naive_requested_slot() -> None:
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        offered(NAIVE, at(SHANGHAI, MONDAY, 9, 30))
