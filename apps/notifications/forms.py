from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.notifications.models import Category, Channel, Status


class PreferencesForm(forms.Form):
    quiet_start = forms.TimeField(label=_("Quiet hours from"), widget=forms.TimeInput(attrs={"type": "time"}))
    quiet_end = forms.TimeField(label=_("Quiet hours until"), widget=forms.TimeInput(attrs={"type": "time"}))
    sms_opt_out = forms.BooleanField(
        label=_("Send me no SMS at all (like replying STOP)"),
        required=False,
        help_text=_("Sign-in codes still come by SMS when you ask for one."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for value, label in Category.choices:
            self.fields[f"category_{value}"] = forms.MultipleChoiceField(
                label=label,
                choices=Channel.choices,
                required=False,
                widget=forms.CheckboxSelectMultiple,
            )

    def category_fields(self) -> list[forms.BoundField]:
        return [self[f"category_{value}"] for value in Category.values]

    def channels_by_category(self) -> dict[str, set[str]]:
        return {value: set(self.cleaned_data[f"category_{value}"]) for value in Category.values}


class DeliveryFilterForm(forms.Form):
    status = forms.ChoiceField(label=_("Status"), choices=[("", _("All")), *Status.choices], required=False)
