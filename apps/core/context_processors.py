from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from apps.clinics.selectors import UserRole, user_roles


def navigation(request: HttpRequest) -> dict[str, Any]:
    """Which parts of the navigation the user's roles open."""
    user = getattr(request, "user", None)
    roles = user_roles(user=user)
    return {
        "nav_roles": roles,
        "is_patient": UserRole.PATIENT in roles,
        "is_doctor": UserRole.DOCTOR in roles,
        "is_clinic_admin": UserRole.CLINIC_ADMIN in roles,
        "is_site_admin": UserRole.SITE_ADMIN in roles,
    }
