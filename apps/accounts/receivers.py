"""Audit sign-ins, sign-outs and failed sign-ins (without the credentials)."""

from __future__ import annotations

import time
from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from apps.accounts.middleware import SESSION_LOGIN_AT, SESSION_SEEN_AT
from apps.audit.models import AuditAction, AuditOutcome
from apps.audit.services import audit_record


@receiver(user_logged_in, dispatch_uid="telemed_audit_login")
def on_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        now = time.time()
        request.session[SESSION_LOGIN_AT] = now
        request.session[SESSION_SEEN_AT] = now
    audit_record(action=AuditAction.LOGIN, actor=user, object_type="user", object_id=user.pk)


@receiver(user_logged_out, dispatch_uid="telemed_audit_logout")
def on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        audit_record(action=AuditAction.LOGOUT, actor=user, object_type="user", object_id=user.pk)


@receiver(user_login_failed, dispatch_uid="telemed_audit_login_failed")
def on_login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    from apps.accounts.models import User

    target = None
    for key in ("email", "phone"):
        value = credentials.get(key)
        if value:
            target = User.objects.filter(**{key: value}).values_list("pk", flat=True).first()
            break
    audit_record(
        action=AuditAction.LOGIN_FAILED,
        actor=None,
        object_type="user",
        object_id=target or "",
        outcome=AuditOutcome.FAILURE,
        role="",
    )
