from __future__ import annotations

import zoneinfo
from typing import Any

from allauth.account.forms import SignupForm as AllauthSignupForm
from django import forms
from django.utils.translation import gettext_lazy as _

from apps.accounts.adapter import LocalPhoneField
from apps.accounts.models import Language, PatientProfile, User

SIGNUP_METHODS = ("phone", "email")

# The time zones people in our clinics' region and beyond are likely to pick,
# then every other one.
_COMMON_ZONES = ["Asia/Shanghai", "Asia/Urumqi", "Asia/Hong_Kong", "Asia/Taipei", "Europe/London", "UTC"]
TIMEZONE_CHOICES = [(z, z) for z in _COMMON_ZONES] + [
    (z, z) for z in sorted(zoneinfo.available_timezones()) if z not in _COMMON_ZONES
]


class SignupForm(AllauthSignupForm):
    """One sign-up form, two paths: phone number + SMS code (no password, no
    email), or email + password."""

    method = forms.ChoiceField(choices=[(m, m) for m in SIGNUP_METHODS], widget=forms.HiddenInput)
    full_name = forms.CharField(
        label=_("Full name"), max_length=150, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        requested = kwargs.pop("method", None)
        super().__init__(*args, **kwargs)
        method = self.data.get("method") or requested or "phone"
        if method not in SIGNUP_METHODS:
            method = "phone"
        self.signup_method = method
        self.initial["method"] = method
        if method == "phone":
            for name in ("email", "password1", "password2"):
                self.fields.pop(name, None)
            self.fields["phone"].required = True
            self.fields["phone"].label = _("Mobile phone number")
            self.fields["phone"].help_text = _("The number you can receive SMS on, for example 138 0013 8000.")
            order = ["method", "full_name", "phone"]
        else:
            self.fields.pop("phone", None)
            self._has_phone_field = False
            self.fields["email"].required = True
            self.fields["email"].label = _("Email address")
            self.fields["password1"].required = True
            if "password2" in self.fields:
                self.fields["password2"].required = True
            order = ["method", "full_name", "email", "password1", "password2"]
        self.order_fields(order)


class PreferencesForm(forms.ModelForm[User]):
    timezone = forms.ChoiceField(label=_("Time zone"), choices=TIMEZONE_CHOICES)

    class Meta:
        model = User
        fields = ["full_name", "language", "timezone"]
        widgets = {"language": forms.Select(choices=Language.choices)}


class PatientProfileForm(forms.ModelForm[PatientProfile]):
    emergency_contact_phone = LocalPhoneField(label=_("Emergency contact phone"), required=False)

    class Meta:
        model = PatientProfile
        fields = [
            "date_of_birth",
            "sex",
            "glucose_unit",
            "village",
            "address",
            "emergency_contact_name",
            "emergency_contact_phone",
        ]
        widgets = {"date_of_birth": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")}

    def clean_date_of_birth(self) -> Any:
        from django.utils import timezone

        value = self.cleaned_data.get("date_of_birth")
        if value and value > timezone.localdate():
            raise forms.ValidationError(_("The date of birth can't be in the future."))
        if value and value.year < 1900:
            raise forms.ValidationError(_("Enter a date of birth after 1900."))
        return value


class ConsentForm(forms.Form):
    agree = forms.BooleanField(
        label=_("I have read the text above and agree to the processing of my health data as it describes."),
        required=True,
        error_messages={"required": _("Tick the box to give your consent.")},
    )


class AccessTokenForm(forms.Form):
    name = forms.CharField(label=_("What is it for?"), max_length=100)
    expires_in_days = forms.TypedChoiceField(
        label=_("Valid for"),
        coerce=int,
        choices=[(30, _("30 days")), (90, _("90 days")), (365, _("1 year")), (0, _("No expiry"))],
        initial=90,
    )
