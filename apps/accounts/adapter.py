"""allauth adapter: phone numbers on our User, SMS codes through the
notification outbox, and new sign-ups become patients."""

from __future__ import annotations

import uuid
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django import forms
from django.http import HttpRequest
from django.utils import translation

from apps.accounts.models import Language, User
from apps.accounts.phones import phone_normalize
from apps.notifications.models import Category, Channel
from apps.notifications.services import notification_send_to_address


class LocalPhoneField(forms.CharField):
    """A phone number as people type it ("138 0013 8000"), stored as E.164."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from django.utils.translation import gettext_lazy as _

        kwargs.setdefault("label", _("Mobile phone number"))
        kwargs.setdefault("max_length", 32)
        kwargs.setdefault(
            "widget",
            forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "inputmode": "tel"}),
        )
        super().__init__(*args, **kwargs)

    def clean(self, value: Any) -> str:
        value = super().clean(value)
        if not value:
            return ""
        return phone_normalize(value)


def _active_language() -> str:
    current = translation.get_language() or ""
    return Language.ZH_HANS if current.lower().startswith("zh") else Language.EN


class AccountAdapter(DefaultAccountAdapter):
    def phone_form_field(self, **kwargs: Any) -> Any:
        return LocalPhoneField(**kwargs)

    def clean_phone(self, phone: str) -> str:
        return phone_normalize(phone)

    def set_phone(self, user: Any, phone: str, verified: bool) -> None:
        user.phone = phone
        user.phone_verified = verified
        if user.pk:
            user.save(update_fields=["phone", "phone_verified"])

    def get_phone(self, user: Any) -> tuple[str, bool] | None:
        if not user.phone:
            return None
        return user.phone, user.phone_verified

    def set_phone_verified(self, user: Any, phone: str) -> None:
        User.objects.filter(pk=user.pk, phone=phone).update(phone_verified=True)
        user.phone_verified = True

    def get_user_by_phone(self, phone: str) -> Any:
        return User.objects.filter(phone=phone).first()

    def send_verification_code_sms(self, user: Any, phone: str, code: str, **kwargs: Any) -> None:
        # Through the notification outbox like every SMS: urgent (quiet hours
        # don't hold it), and its code erased from the row once sent.
        self._sms(phone, "account/sign_in_code", {"code": code}, getattr(user, "language", None), sensitive=True)

    def send_unknown_account_sms(self, phone: str, **kwargs: Any) -> None:
        self._sms(phone, "account/unknown_number", {}, None)

    def send_account_already_exists_sms(self, phone: str) -> None:
        self._sms(phone, "account/number_has_account", {}, None)

    def _sms(
        self, phone: str, template: str, context: dict[str, Any], language: str | None, *, sensitive: bool = False
    ) -> None:
        notification_send_to_address(
            channel=Channel.SMS,
            destination=phone,
            category=Category.ACCOUNT,
            template=template,
            context=context,
            language=language or _active_language(),
            idempotency_key=f"{template}:{uuid.uuid4().hex}",
            sensitive=sensitive,
        )

    def get_login_stages(self) -> list[str]:
        stages: list[str] = super().get_login_stages()
        return [
            "apps.accounts.stages.ContactVerificationStage"
            if path == "allauth.account.stages.EmailVerificationStage"
            else path
            for path in stages
        ]

    def save_user(self, request: HttpRequest, user: Any, form: Any, commit: bool = True) -> Any:
        from apps.accounts.services import patient_signup_complete

        user = super().save_user(request, user, form, commit=False)
        user.email = user.email or None
        user.full_name = form.cleaned_data.get("full_name", "")
        user.language = _active_language()
        if commit:
            user.save()
            patient_signup_complete(user=user)
        return user
