"""Labels and values of readings in templates (pages and notifications)."""

from __future__ import annotations

from django import template

from apps.vitals import display
from apps.vitals.flags import advice_for
from apps.vitals.models import Reading

register = template.Library()


@register.filter
def vitals_kind(code: str) -> str:
    return display.kind_label(code)


@register.filter
def vitals_category(code: str) -> str:
    return display.category_label(code)


@register.filter
def vitals_severity(code: str) -> str:
    return display.severity_label(code)


@register.filter
def vitals_context(code: str) -> str:
    return display.context_label(code)


@register.filter
def vitals_values(reading: Reading, glucose_unit: str) -> str:
    return display.reading_values_display(reading, glucose_unit=glucose_unit)


@register.filter
def vitals_advice(category: str, emergency_number: str) -> str:
    """What the patient should do about a reading of ``category``, in the
    active language (a notification renders in its recipient's)."""
    return advice_for(category, emergency_number=str(emergency_number))
