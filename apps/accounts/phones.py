"""Phone numbers: parsed and stored in E.164 with the phonenumbers library."""

from __future__ import annotations

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _


def phone_normalize(raw: str, *, region: str | None = None) -> str:
    """Return ``raw`` as E.164, or raise a translated ValidationError."""
    text = (raw or "").strip()
    if not text:
        raise ValidationError(_("Enter a phone number."), code="required")
    try:
        parsed = phonenumbers.parse(text, region or settings.SMS_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise ValidationError(
            _("Enter a valid phone number, for example 138 0013 8000 or +44 7700 900123."), code="invalid"
        ) from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationError(
            _("Enter a valid phone number, for example 138 0013 8000 or +44 7700 900123."), code="invalid"
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def validate_e164(value: str) -> None:
    if value and phone_normalize(value) != value:
        raise ValidationError(_("Phone numbers are stored in international format (+86…)."), code="invalid")


def phone_display(value: str) -> str:
    if not value:
        return ""
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return value
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
