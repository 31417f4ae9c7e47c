"""A doctor's free times on one day, for the pages that book one and step
from day to day: never before today, at most a year ahead."""

from __future__ import annotations

from datetime import date

import pytest

from apps.accounts.models import User
from apps.clinics.models import Clinic
from apps.scheduling.selectors import doctor_free_day
from tests.scheduling.conftest import NOW

pytestmark = [pytest.mark.usefixtures("hours"), pytest.mark.sqlite]

TUESDAY = date(2026, 12, 1)  # NOW's day
WEDNESDAY = date(2026, 12, 2)


def test_it_is_today_when_no_day_is_asked_for(bob: User, clinic: Clinic) -> None:
    free = doctor_free_day(doctor=bob, clinic=clinic, day=None, now=NOW)
    assert (free.day, free.previous_day, free.next_day) == (TUESDAY, None, WEDNESDAY)
    assert [f"{slot.start.astimezone(NOW.tzinfo):%H:%M}" for slot in free.slots][:2] == ["09:00", "09:30"]


def test_it_steps_back_to_today_but_not_before(bob: User, clinic: Clinic) -> None:
    free = doctor_free_day(doctor=bob, clinic=clinic, day=WEDNESDAY, now=NOW)
    assert (free.day, free.previous_day) == (WEDNESDAY, TUESDAY)
    assert doctor_free_day(doctor=bob, clinic=clinic, day=date(2026, 11, 1), now=NOW).day == TUESDAY


def test_it_goes_no_further_than_a_year_ahead(bob: User, clinic: Clinic) -> None:
    assert doctor_free_day(doctor=bob, clinic=clinic, day=date(2030, 1, 1), now=NOW).day == date(2027, 12, 1)
