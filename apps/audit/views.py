from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.accounts.decorators import clinic_admin_required
from apps.audit.forms import AuditFilterForm
from apps.audit.models import AuditAction
from apps.audit.selectors import BREAK_GLASS_OBJECT_TYPES, AuditPage, audit_page_of_clinic, audit_verification_latest
from apps.audit.services import audit_record
from apps.clinics.selectors import clinic_get_for_admin
from apps.core.http import AuthedRequest


def _key(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) <= 18 else None


@clinic_admin_required
@require_GET
def clinic_audit_log(request: AuthedRequest, clinic_id: int) -> HttpResponse:
    """A clinic admin reads what happened in their clinic (docs/security.md)."""
    clinic = clinic_get_for_admin(user=request.user, clinic_id=clinic_id)
    form = AuditFilterForm(request.GET)
    if form.is_valid():
        page = audit_page_of_clinic(
            clinic=clinic,
            where=form.to_filter(timezone_name=clinic.timezone),
            before=_key(request.GET.get("before")),
            after=_key(request.GET.get("after")),
        )
        summary = form.summary()
    else:
        page, summary = AuditPage(events=[], newer_than=None, older_than=None), "filters: invalid"
    audit_record(
        action=AuditAction.VIEW,
        actor=request.user,
        object_type="audit_log",
        object_id=clinic.pk,
        clinic_id=clinic.pk,
        reason=summary,
    )
    query = request.GET.copy()
    query.pop("before", None)
    query.pop("after", None)
    return render(
        request,
        "audit/clinic_log.html",
        {
            "clinic": clinic,
            "form": form,
            "page": page,
            "filters": query.urlencode(),
            "verification": audit_verification_latest(),
            "break_glass_types": BREAK_GLASS_OBJECT_TYPES,
        },
    )
