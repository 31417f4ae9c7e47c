from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.utils.translation import gettext_lazy as _

from apps.accounts.adapter import LocalPhoneField
from apps.accounts.models import User
from apps.clinics.models import Role


class InvitationForm(forms.Form):
    full_name = forms.CharField(label=_("Full name"), max_length=150)
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)
    email = forms.EmailField(label=_("Email address"), required=False)
    phone = LocalPhoneField(label=_("Mobile phone number"), required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("email") and not data.get("phone") and not self.errors:
            raise forms.ValidationError(_("Enter an email address or a mobile phone number to send the invitation to."))
        return data


class InvitationAccountForm(forms.Form):
    """Account set-up for an invitee who has no account yet."""

    full_name = forms.CharField(label=_("Full name"), max_length=150)
    password1 = forms.CharField(
        label=_("Password"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    password2 = forms.CharField(
        label=_("Password (again)"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def __init__(self, *args: Any, email: str = "", phone: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.email = email
        self.phone = phone

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        first, second = data.get("password1"), data.get("password2")
        if first and second and first != second:
            self.add_error("password2", _("The two passwords differ."))
        elif first:
            dummy = User(email=self.email or None, phone=self.phone or None, full_name=data.get("full_name", ""))
            try:
                password_validation.validate_password(first, dummy)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return data
