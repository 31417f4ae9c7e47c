from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.vitals.kinds import GLUCOSE_UNITS, KIND_CHOICES, GlucoseContext, Kind

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"

PERIODS = [
    ("7", _("Last 7 days")),
    ("30", _("Last 30 days")),
    ("90", _("Last 3 months")),
    ("365", _("Last year")),
    ("all", _("All")),
]


class ReadingForm(forms.Form):
    """Quick entry of one reading: big numeric fields (checked by the
    service, which knows the limits), the time (now, in the user's zone)
    and a note."""

    measured_at = forms.DateTimeField(
        label=_("Measured at"),
        input_formats=[DATETIME_LOCAL, "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
    )
    note = forms.CharField(label=_("Note (optional)"), max_length=500, required=False)

    def __init__(self, *args: Any, kind: Kind, glucose_unit: str, hints: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        value_fields: dict[str, forms.Field] = {}
        for value_field in kind.fields:
            unit = glucose_unit if kind.has_context else value_field.unit_label
            attrs = {"inputmode": "decimal", "autocomplete": "off", "class": "vitals-big", "enterkeyhint": "next"}
            if hints.get(value_field.name):
                attrs["placeholder"] = hints[value_field.name]
            value_fields[value_field.name] = forms.CharField(
                label=f"{value_field.label} ({unit})",
                required=value_field.required,
                max_length=12,
                widget=forms.TextInput(attrs=attrs),
            )
        if kind.has_context:
            value_fields["unit"] = forms.ChoiceField(
                label=_("Unit"), choices=[(u, u) for u in GLUCOSE_UNITS], initial=glucose_unit
            )
            value_fields["context"] = forms.ChoiceField(
                label=_("When"), choices=GlucoseContext.CHOICES, widget=forms.RadioSelect
            )
        # The values first: they are what the person came to type.
        self.fields = {**value_fields, **self.fields}

    def values(self) -> dict[str, str]:
        return {f.name: self.cleaned_data.get(f.name) or "" for f in self.kind.fields if self.cleaned_data.get(f.name)}


class ReadingFilterForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=[("", _("All kinds")), *KIND_CHOICES], required=False)
    period = forms.ChoiceField(label=_("Period"), choices=PERIODS, required=False, initial="30")
