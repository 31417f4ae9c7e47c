from __future__ import annotations

import zoneinfo
from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.audit.models import AuditAction
from apps.audit.selectors import AuditFilter


class AuditFilterForm(forms.Form):
    patient = forms.CharField(
        label=_("Patient"),
        required=False,
        max_length=100,
        help_text=_("Name, phone number or id"),
    )
    user = forms.CharField(
        label=_("Done by"),
        required=False,
        max_length=100,
        help_text=_("Name, phone number, email or id"),
    )
    action = forms.ChoiceField(label=_("Action"), choices=[("", _("Any")), *AuditAction.choices], required=False)
    date_from = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("Until"), required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError(_("The first day must not be after the last day."))
        return data

    def to_filter(self, *, timezone_name: str) -> AuditFilter:
        """The filter, its days read in ``timezone_name`` (the clinic's)."""
        zone = zoneinfo.ZoneInfo(timezone_name)
        data = self.cleaned_data
        start, end = data.get("date_from"), data.get("date_to")
        return AuditFilter(
            patient_query=data.get("patient") or "",
            actor_query=data.get("user") or "",
            action=data.get("action") or "",
            since=datetime.combine(start, time(0), tzinfo=zone) if start else None,
            until=datetime.combine(end + timedelta(days=1), time(0), tzinfo=zone) if end else None,
        )

    def summary(self) -> str:
        """Which filters were used, for the audit event of the view (the
        names and numbers searched for stay out of the log)."""
        data = self.cleaned_data
        used = [name for name in ("patient", "user") if data.get(name)]
        if data.get("action"):
            used.append(f"action={data['action']}")
        for name in ("date_from", "date_to"):
            if data.get(name):
                used.append(f"{name}={data[name]:%Y-%m-%d}")
        return "filters: " + ", ".join(used) if used else ""
