"""Login stages: email verification is mandatory for accounts that sign in
by email, and not asked of phone-only patients (their phone is verified by
the SMS code instead). allauth's global setting can't express "one or the
other", so this stage decides per account."""

from __future__ import annotations

from typing import Any

from allauth.account.app_settings import EmailVerificationMethod
from allauth.account.stages import EmailVerificationStage


class ContactVerificationStage(EmailVerificationStage):
    def handle(self) -> tuple[Any, bool]:
        user = self.login.user
        email = self.login.email or getattr(user, "email", None)
        phone_verified = bool(getattr(user, "phone", None) and getattr(user, "phone_verified", False))
        if email and not phone_verified:
            self.login.email_verification = EmailVerificationMethod.MANDATORY
        result: tuple[Any, bool] = super().handle()
        return result
