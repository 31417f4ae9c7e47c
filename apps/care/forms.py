"""Forms of the care team, break-glass and referral pages: they check the
input's shape; the services check who may do what."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import User
from apps.accounts.phones import phone_normalize
from apps.care.models import BREAK_GLASS_REASON_MIN_LENGTH, ReferralUrgency
from apps.care.services import DECLINE_REASON_MAX_LENGTH, REFERRAL_REASON_MAX_LENGTH
from apps.clinics.models import Clinic, Role, Specialty


class DoctorChoiceField(forms.ModelChoiceField[User]):
    def label_from_instance(self, obj: Any) -> str:
        return str(obj.full_name or obj)


class CareTeamAddForm(forms.Form):
    clinic = forms.ModelChoiceField(label=_("Clinic"), queryset=Clinic.objects.none())
    doctor = DoctorChoiceField(label=_("Doctor"), queryset=User.objects.none())

    def __init__(self, *args: Any, clinics: QuerySet[Clinic], doctors: QuerySet[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["clinic"].queryset = clinics  # type: ignore[attr-defined]
        self.fields["doctor"].queryset = doctors  # type: ignore[attr-defined]


class BreakGlassForm(forms.Form):
    patient = forms.CharField(
        label=_("Patient's phone number or patient number"),
        max_length=40,
        help_text=_("The exact mobile number (e.g. 138 0013 8000) or the patient number."),
    )
    reason = forms.CharField(
        label=_("Why do you need this record now?"),
        min_length=BREAK_GLASS_REASON_MIN_LENGTH,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Required. Your access, and this reason, are shown to your clinic's admins."),
    )

    def clean_patient(self) -> dict[str, Any]:
        """Either ``{"id": n}`` or ``{"phone": "+86…"}``."""
        text = self.cleaned_data["patient"].strip()
        digits = text.lstrip("#")
        if digits.isdigit() and len(digits) <= 9:
            return {"id": int(digits)}
        try:
            return {"phone": phone_normalize(text)}
        except ValidationError:
            raise ValidationError(
                _("Enter the patient's exact phone number or their patient number."), code="invalid"
            ) from None

    def clean_reason(self) -> str:
        reason = " ".join(self.cleaned_data["reason"].split())
        if len(reason) < BREAK_GLASS_REASON_MIN_LENGTH:
            raise ValidationError(
                _("Say why you need this record now (at least %(count)d characters)."),
                code="min_length",
                params={"count": BREAK_GLASS_REASON_MIN_LENGTH},
            )
        return reason


def network_doctors() -> QuerySet[User]:
    """Every active doctor of an active clinic of the network."""
    return (
        User.objects.filter(
            is_active=True,
            memberships__role=Role.DOCTOR,
            memberships__is_active=True,
            memberships__clinic__is_active=True,
        )
        .distinct()
        .order_by("full_name")
    )


class ReferralForm(forms.Form):
    to_doctor = DoctorChoiceField(
        label=_("To a doctor"), queryset=User.objects.none(), required=False, empty_label=_("Any doctor")
    )
    to_specialty = forms.ModelChoiceField(
        label=_("Or to a specialty"), queryset=Specialty.objects.all(), required=False, empty_label="—"
    )
    urgency = forms.ChoiceField(
        label=_("Urgency"), choices=ReferralUrgency.choices, initial=ReferralUrgency.ROUTINE, widget=forms.RadioSelect
    )
    reason = forms.CharField(
        label=_("Reason for the referral"),
        max_length=REFERRAL_REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 5}),
    )

    def __init__(self, *args: Any, exclude: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["to_doctor"].queryset = network_doctors().exclude(pk__in=exclude)  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not cleaned.get("to_doctor") and not cleaned.get("to_specialty") and not self.errors:
            raise ValidationError(_("Choose a doctor or a specialty."), code="no_receiver")
        return cleaned


class ReferralDeclineForm(forms.Form):
    reason = forms.CharField(
        label=_("Why do you decline?"),
        max_length=DECLINE_REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
