"""Personal access tokens: create, revoke, and authenticate API requests."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from apps.accounts.models import PersonalAccessToken, User
from apps.audit.models import AuditAction
from apps.audit.services import audit_record

TOKEN_PREFIX = "tm_"  # noqa: S105  # a visible marker, not a secret


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def token_create(*, user: User, name: str, expires_in_days: int | None) -> tuple[PersonalAccessToken, str]:
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
    with transaction.atomic():
        token = PersonalAccessToken.objects.create(
            user=user, name=name, token_hash=_hash(raw), prefix=raw[:10], expires_at=expires_at
        )
        audit_record(action=AuditAction.CREATE, actor=user, object_type="access_token", object_id=token.pk)
    return token, raw


def token_revoke(*, token: PersonalAccessToken, by: User) -> None:
    with transaction.atomic():
        PersonalAccessToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        audit_record(action=AuditAction.DELETE, actor=by, object_type="access_token", object_id=token.pk)


class AccessTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer tm_…``"""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, PersonalAccessToken] | None:
        header = authentication.get_authorization_header(request).decode(errors="replace")
        if not header.startswith(f"{self.keyword} {TOKEN_PREFIX}"):
            return None
        raw = header[len(self.keyword) + 1 :].strip()
        # The patient profile too: the API asks at once whether the user is a patient.
        token = (
            PersonalAccessToken.objects.select_related("user", "user__patient_profile")
            .filter(token_hash=_hash(raw))
            .first()
        )
        if token is None or not token.is_usable() or not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("This access token is not valid (unknown, revoked or expired)."))
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
            PersonalAccessToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


__all__ = ["AccessTokenAuthentication", "token_create", "token_revoke"]


class AccessTokenScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes our bearer tokens."""

    target_class = "apps.accounts.tokens.AccessTokenAuthentication"
    name = "accessToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "A personal access token (tm_…) from /me/tokens/."}
