"""Labels of doctors' weekly hours for the "Doctors' hours" pages."""

from __future__ import annotations

from collections.abc import Iterable

from django import template
from django.utils.translation import gettext as _

from apps.scheduling import labels
from apps.scheduling.models import AvailabilityRule
from apps.scheduling.selectors import OutsideReason

register = template.Library()


@register.filter
def rule_hours(rule: AvailabilityRule) -> str:
    return labels.rule_hours_label(rule)


@register.filter
def rule_validity(rule: AvailabilityRule) -> str:
    return labels.rule_validity_label(rule)


@register.filter
def modes_label(modes: Iterable[str]) -> str:
    return labels.modes_label(modes)


@register.filter
def minutes_label(minutes: int) -> str:
    return labels.minutes_label(minutes)


@register.filter
def reminders_label(offsets_minutes: Iterable[int]) -> str:
    return labels.reminders_label(offsets_minutes)


@register.filter
def outside_reason(reason: str) -> str:
    """Why a booked appointment is outside the doctor's hours."""
    if reason == OutsideReason.TIME_OFF:
        return _("During time off")
    if reason == OutsideReason.MODE:
        return _("This way to consult is no longer offered then")
    return _("Outside the weekly hours")
