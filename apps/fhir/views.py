"""The patient's own record, from their profile page: the FHIR Bundle as a
file, and a readable, printable summary in their language."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from apps.core.http import AuthedRequest
from apps.fhir.record import record_bundle
from apps.fhir.selectors import patient_record_for_user
from apps.fhir.summary import record_summary


@login_required
@require_GET
def export_mine(request: AuthedRequest) -> HttpResponse:
    """The caller's whole record as a FHIR R4 Bundle (collection), as a download."""
    record = patient_record_for_user(user=request.user, patient_id=request.user.pk, object_type="fhir_export")
    bundle = record_bundle(
        record,
        base_url=request.build_absolute_uri(reverse("fhir:root")),
        site_url=request.build_absolute_uri("/").rstrip("/"),
        bundle_type="collection",
    )
    response = HttpResponse(
        json.dumps(bundle, ensure_ascii=False, indent=1, default=str), content_type="application/fhir+json"
    )
    filename = f"health-record-{timezone.localdate():%Y-%m-%d}.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
@require_GET
def summary_mine(request: AuthedRequest) -> HttpResponse:
    """The caller's record as a page to read or print."""
    record = patient_record_for_user(user=request.user, patient_id=request.user.pk, object_type="record_summary")
    response = render(request, "fhir/summary.html", {"summary": record_summary(record, now=timezone.now())})
    response["Cache-Control"] = "private, no-store"
    return response
