from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Language
from apps.clinics.models import Clinic, Specialty
from apps.scheduling.models import AppointmentStatus, ConsultMode


class DoctorSearchForm(forms.Form):
    specialty = forms.ModelChoiceField(
        label=_("Specialty"), queryset=Specialty.objects.all(), required=False, empty_label=_("Any")
    )
    clinic = forms.ModelChoiceField(
        label=_("Clinic"), queryset=Clinic.objects.filter(is_active=True), required=False, empty_label=_("Any")
    )
    language = forms.ChoiceField(label=_("Speaks"), choices=[("", _("Any")), *Language.choices], required=False)


class BookingForm(forms.Form):
    starts_at = forms.DateTimeField(widget=forms.HiddenInput)
    mode = forms.ChoiceField(
        label=_("How would you like to consult?"), choices=ConsultMode.choices, widget=forms.RadioSelect
    )
    reason = forms.CharField(
        label=_("Reason for the visit (optional)"),
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args: Any, modes: frozenset[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if modes is not None:
            mode_field = self.fields["mode"]
            assert isinstance(mode_field, forms.ChoiceField)
            mode_field.choices = [(v, label) for v, label in ConsultMode.choices if v in modes]


class CancelForm(forms.Form):
    reason = forms.CharField(label=_("Reason (optional)"), max_length=300, required=False)


class StaffBookingForm(forms.Form):
    """A clinic admin books for a patient, registering them if needed."""

    phone = forms.CharField(label=_("Patient's mobile phone number"), max_length=32)
    full_name = forms.CharField(label=_("Full name (for a new patient)"), max_length=150, required=False)
    consent = forms.BooleanField(
        label=_("The patient has agreed to the processing of their health data (for a patient who has not yet)."),
        required=False,
    )
    doctor = forms.ChoiceField(label=_("Doctor"))
    day = forms.DateField(label=_("Day"), widget=forms.DateInput(attrs={"type": "date"}))
    starts_at = forms.DateTimeField(required=False, widget=forms.HiddenInput)
    mode = forms.ChoiceField(label=_("How"), choices=ConsultMode.choices, required=False)
    reason = forms.CharField(label=_("Reason for the visit (optional)"), max_length=500, required=False)

    def __init__(self, *args: Any, doctors: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        doctor_field = self.fields["doctor"]
        assert isinstance(doctor_field, forms.ChoiceField)
        doctor_field.choices = [(str(pk), name) for pk, name in doctors]

    def clean_phone(self) -> str:
        from apps.accounts.phones import phone_normalize

        return phone_normalize(self.cleaned_data["phone"])


class StaffCancelForm(forms.Form):
    """Staff cancel for a patient; after the clinic's cutoff a reason is required (checked by the service)."""

    reason = forms.CharField(label=_("Reason, told to the patient"), max_length=300, required=False)


class MarkForm(forms.Form):
    status = forms.ChoiceField(
        choices=[(AppointmentStatus.COMPLETED, _("Completed")), (AppointmentStatus.NO_SHOW, _("Did not come"))]
    )


class StaffRescheduleForm(forms.Form):
    starts_at = forms.DateTimeField(widget=forms.HiddenInput)
    reason = forms.CharField(label=_("Reason, told to the patient"), max_length=300, required=False)
