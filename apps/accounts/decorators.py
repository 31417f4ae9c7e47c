"""View guards by role. The object-level checks live in the selectors."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _

from apps.accounts.selectors import consent_is_current
from apps.clinics.selectors import UserRole, user_roles

View = Callable[..., HttpResponse]


def role_required(*roles: str) -> Callable[[View], View]:
    """Signed in and holding one of ``roles``; anyone else gets "not found"."""

    def decorator(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not user_roles(user=request.user) & set(roles):
                raise Http404
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


patient_required = role_required(UserRole.PATIENT)
clinic_admin_required = role_required(UserRole.CLINIC_ADMIN)


def consent_required(view: View) -> View:
    """Patients must consent to the current text before processing of their
    health data (readings, uploads, booking)."""

    @patient_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not consent_is_current(patient=request.user):  # type: ignore[arg-type]  # patient_required signed them in
            messages.info(request, _("Before you continue, please read and give your consent below."))
            return redirect("accounts:consent")
        return view(request, *args, **kwargs)

    return wrapped
