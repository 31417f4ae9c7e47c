"""Forms of the clinic admin's "Doctors' hours" pages: weekly hours, time
off (clinic-local date-times) and the clinic's booking policy."""

from __future__ import annotations

import re
import zoneinfo
from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.utils.dates import WEEKDAYS
from django.utils.translation import gettext_lazy as _

from apps.scheduling.models import ConsultMode
from apps.scheduling.services import MAX_REMINDER_OFFSET_MINUTES, MAX_REMINDERS


class _TimeInput(forms.TimeInput):
    input_type = "time"

    def __init__(self) -> None:
        super().__init__(format="%H:%M")


class _DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self) -> None:
        super().__init__(format="%Y-%m-%d")


class AvailabilityRuleForm(forms.Form):
    weekdays = forms.TypedMultipleChoiceField(
        label=_("Days of the week"),
        choices=[(day, WEEKDAYS[day]) for day in range(7)],
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one day of the week.")},
    )
    start_time = forms.TimeField(label=_("From"), widget=_TimeInput())
    end_time = forms.TimeField(label=_("Until"), widget=_TimeInput())
    slot_minutes = forms.IntegerField(
        label=_("Slot length (minutes)"),
        min_value=5,
        max_value=240,
        initial=20,
        help_text=_("For example 15, 20 or 30."),
    )
    buffer_minutes = forms.IntegerField(label=_("Break between slots (minutes)"), min_value=0, max_value=120, initial=0)
    modes = forms.MultipleChoiceField(
        label=_("Ways to consult"),
        choices=ConsultMode.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one way to consult.")},
    )
    valid_from = forms.DateField(
        label=_("Valid from (optional)"), required=False, widget=_DateInput(), help_text=_("Empty: from now on.")
    )
    valid_until = forms.DateField(
        label=_("Valid until (optional)"), required=False, widget=_DateInput(), help_text=_("Empty: no end date.")
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start: time | None = data.get("start_time")
        end: time | None = data.get("end_time")
        slot_minutes: int | None = data.get("slot_minutes")
        if start is not None and end is not None:
            if end <= start:
                self.add_error("end_time", _("The hours must end after they start."))
            elif slot_minutes is not None and _minutes_between(start, end) < slot_minutes:
                self.add_error("slot_minutes", _("The hours are shorter than one slot."))
        valid_from: date | None = data.get("valid_from")
        valid_until: date | None = data.get("valid_until")
        if valid_from is not None and valid_until is not None and valid_until < valid_from:
            self.add_error("valid_until", _("The last day must not be before the first day."))
        return data


def _minutes_between(start: time, end: time) -> int:
    return (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)


class TimeOffForm(forms.Form):
    """Time off in the clinic's local time. Leave the times empty for whole
    days: from the start of the first day to the end of the last."""

    start_day = forms.DateField(label=_("First day"), widget=_DateInput())
    start_time = forms.TimeField(
        label=_("From (optional)"), required=False, widget=_TimeInput(), help_text=_("Empty: the start of the day.")
    )
    end_day = forms.DateField(label=_("Last day"), widget=_DateInput())
    end_time = forms.TimeField(
        label=_("Until (optional)"), required=False, widget=_TimeInput(), help_text=_("Empty: the end of the day.")
    )
    reason = forms.CharField(
        label=_("Reason (optional)"),
        max_length=200,
        required=False,
        help_text=_("For example: leave, a public holiday, training."),
    )

    def __init__(self, *args: Any, zone: zoneinfo.ZoneInfo, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.zone = zone

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start_day: date | None = data.get("start_day")
        end_day: date | None = data.get("end_day")
        if start_day is None or end_day is None:
            return data
        start_time: time | None = data.get("start_time")
        end_time: time | None = data.get("end_time")
        starts_at = datetime.combine(start_day, start_time or time(0), tzinfo=self.zone)
        if end_time is None:
            ends_at = datetime.combine(end_day + timedelta(days=1), time(0), tzinfo=self.zone)
        else:
            ends_at = datetime.combine(end_day, end_time, tzinfo=self.zone)
        if ends_at <= starts_at:
            self.add_error("end_day", _("The time off must end after it starts."))
        data["starts_at"] = starts_at
        data["ends_at"] = ends_at
        return data


_OFFSET = re.compile(
    r"^(?P<count>\d{1,5})\s*(?P<unit>d|days?|天|h|hrs?|hours?|小时|个小时|m|mins?|minutes?|分钟|分)?$", re.IGNORECASE
)
_UNIT_MINUTES = {"d": 24 * 60, "天": 24 * 60, "h": 60, "小": 60, "个": 60, "m": 1, "分": 1}


def reminder_offsets_text(offsets: list[int]) -> str:
    """Offsets in minutes as the field shows them: ``[1440, 60, 30]`` → "1d, 1h, 30m"."""
    parts = []
    for minutes in offsets:
        if minutes % (24 * 60) == 0:
            parts.append(f"{minutes // (24 * 60)}d")
        elif minutes % 60 == 0:
            parts.append(f"{minutes // 60}h")
        else:
            parts.append(f"{minutes}m")
    return ", ".join(parts)


class BookingPolicyForm(forms.Form):
    min_notice_minutes = forms.IntegerField(
        label=_("Minimum notice (minutes)"),
        min_value=0,
        max_value=14 * 24 * 60,
        help_text=_("Patients must book at least this long before the appointment."),
    )
    max_ahead_days = forms.IntegerField(label=_("Book up to (days ahead)"), min_value=1, max_value=365)
    cancellation_cutoff_hours = forms.IntegerField(
        label=_("Patients may cancel or move until (hours before)"),
        min_value=0,
        max_value=14 * 24,
        help_text=_("Later, only the clinic can change the appointment."),
    )
    reminders = forms.CharField(
        label=_("Reminders before the appointment"),
        required=False,
        max_length=100,
        help_text=_(
            "Separated by commas, for example “1d, 2h, 30m” (d = days, h = hours, m = minutes; "
            "a number alone is minutes). Empty: the default, a day and an hour before. "
            "Changes apply to appointments booked from now on."
        ),
    )

    def clean_reminders(self) -> list[int]:
        text = self.cleaned_data["reminders"].strip()
        if not text:
            return []
        offsets: set[int] = set()
        for part in re.split(r"[,;\uff0c\uff1b\u3001]+", text):
            part = part.strip()
            if not part:
                continue
            match = _OFFSET.match(part)
            if match is None:
                raise forms.ValidationError(
                    _("“%(part)s” is not a time before the appointment, such as 1d, 2h or 30m."),
                    params={"part": part},
                    code="invalid",
                )
            unit = (match["unit"] or "m")[0].lower()
            minutes = int(match["count"]) * _UNIT_MINUTES[unit]
            if not 0 < minutes <= MAX_REMINDER_OFFSET_MINUTES:
                raise forms.ValidationError(
                    _("A reminder must be between 1 minute and 14 days before the appointment."), code="range"
                )
            offsets.add(minutes)
        if len(offsets) > MAX_REMINDERS:
            raise forms.ValidationError(
                _("At most %(count)d reminders."), params={"count": MAX_REMINDERS}, code="too_many"
            )
        return sorted(offsets, reverse=True)
