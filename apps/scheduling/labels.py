"""Short, translated labels of doctors' weekly hours, for pages and messages."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.dates import WEEKDAYS_ABBR
from django.utils.translation import gettext as _

from apps.scheduling.models import AvailabilityRule, ConsultMode

DASH = "\N{EN DASH}"


def weekdays_label(weekdays: Iterable[int]) -> str:
    """``[0, 1, 2, 3, 4]`` → "Mon-Fri", ``[0, 2, 5, 6]`` → "Mon, Wed, Sat, Sun"
    (0 = Monday; three or more days in a row become a range)."""
    runs: list[list[int]] = []
    for day in sorted(set(weekdays)):
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts: list[str] = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{WEEKDAYS_ABBR[run[0]]}{DASH}{WEEKDAYS_ABBR[run[-1]]}")
        else:
            parts.extend(str(WEEKDAYS_ABBR[day]) for day in run)
    return ", ".join(parts)


def modes_label(modes: Iterable[str]) -> str:
    """The ways to consult, in their usual order."""
    chosen = set(modes)
    return ", ".join(str(label) for value, label in ConsultMode.choices if value in chosen)


def rule_hours_label(rule: AvailabilityRule) -> str:
    """A rule's days and hours, such as "Mon-Fri 09:00-12:00" (with en dashes)."""
    return f"{weekdays_label(rule.weekdays)} {rule.start_time:%H:%M}{DASH}{rule.end_time:%H:%M}"


def rule_validity_label(rule: AvailabilityRule) -> str:
    if rule.valid_from and rule.valid_until:
        return _("from %(start)s until %(end)s") % {"start": rule.valid_from, "end": rule.valid_until}
    if rule.valid_from:
        return _("from %(start)s") % {"start": rule.valid_from}
    if rule.valid_until:
        return _("until %(end)s") % {"end": rule.valid_until}
    return _("every week")


def minutes_label(minutes: int) -> str:
    """A length of time the way people say it: "1 d", "2 h", "90 min"."""
    if minutes and minutes % (24 * 60) == 0:
        # Translators: a number of days, short (reminders, notice).
        return _("%(count)d d") % {"count": minutes // (24 * 60)}
    if minutes and minutes % 60 == 0:
        # Translators: a number of hours, short (reminders, notice).
        return _("%(count)d h") % {"count": minutes // 60}
    # Translators: a number of minutes, short (reminders, notice).
    return _("%(count)d min") % {"count": minutes}


def reminders_label(offsets_minutes: Iterable[int]) -> str:
    """``[1440, 60]`` → "1 d, 1 h before"."""
    # Translators: when reminders go out, e.g. "1 d, 1 h before" (the appointment).
    return _("%(times)s before") % {"times": ", ".join(minutes_label(m) for m in offsets_minutes)}
