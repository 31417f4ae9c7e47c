from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from apps.clinics.selectors import UserRole, user_roles
from apps.notifications.views import outbox_enabled


def navigation(request: HttpRequest) -> dict[str, Any]:
    """Which parts of the navigation the user's roles open."""
    user = getattr(request, "user", None)
    roles = user_roles(user=user)
    unread = 0
    if user is not None and user.is_authenticated:
        from apps.notifications.services import unread_count

        unread = unread_count(user_id=user.pk)
    return {
        "unread_notifications": unread,
        "outbox_enabled": outbox_enabled(),
        "nav_roles": roles,
        "is_patient": UserRole.PATIENT in roles,
        "is_doctor": UserRole.DOCTOR in roles,
        "is_clinic_admin": UserRole.CLINIC_ADMIN in roles,
        "is_site_admin": UserRole.SITE_ADMIN in roles,
    }
