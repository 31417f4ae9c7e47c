"""The patient chart for doctors: ``/care/patients/<id>/`` (the page),
``…/timeline/`` (older timeline items, for "Show more") and
``…/targets/`` (set or remove a target). Thin: selectors_chart reads and
checks access, vitals' services write the targets."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.decorators import role_required
from apps.care.forms_chart import TargetForm
from apps.care.selectors_chart import (
    BadCursor,
    TimelineKind,
    chart_patient_get_for_user,
    patient_chart_get_for_user,
    patient_timeline_get_for_user,
)
from apps.clinics.selectors import UserRole
from apps.core.http import AuthedRequest
from apps.vitals.selectors import glucose_unit_for
from apps.vitals.services import TargetRefused, patient_target_remove, patient_target_set

doctor_required = role_required(UserRole.DOCTOR)


def _chart_url(patient_id: int, anchor: str = "") -> str:
    url = reverse("care:chart", args=[patient_id])
    return f"{url}#{anchor}" if anchor else url


def _render_chart(request: AuthedRequest, patient_id: int, *, target_form: TargetForm | None = None) -> HttpResponse:
    chart = patient_chart_get_for_user(user=request.user, patient_id=patient_id)
    form = target_form or TargetForm(glucose_unit=chart.glucose_unit)
    response = render(
        request,
        "care/chart.html",
        {"chart": chart, "patient": chart.patient, "target_form": form, "timeline_kinds": TimelineKind.ORDER},
        status=400 if target_form is not None else 200,
    )
    response["Cache-Control"] = "private, no-store"
    return response


@doctor_required
@require_GET
def chart(request: AuthedRequest, patient_id: int) -> HttpResponse:
    return _render_chart(request, patient_id)


@doctor_required
@require_GET
def timeline(request: AuthedRequest, patient_id: int) -> HttpResponse:
    """A page of the timeline (``before``: older than that item; ``only``: one kind)."""
    try:
        patient, page = patient_timeline_get_for_user(
            user=request.user,
            patient_id=patient_id,
            cursor=request.GET.get("before", ""),
            only=request.GET.get("only", ""),
        )
    except BadCursor:
        return HttpResponse(_("This page of the timeline does not exist."), status=400, content_type="text/plain")
    # htmx: "Show more" appends the next items; a filter replaces the box (its chips and first page).
    template = "care/chart_timeline.html"
    if request.headers.get("HX-Request") == "true":
        template = "care/_chart_timeline_items.html" if "before" in request.GET else "care/_chart_timeline_box.html"
    response = render(request, template, {"patient": patient, "timeline": page, "timeline_kinds": TimelineKind.ORDER})
    response["Cache-Control"] = "private, no-store"
    return response


@doctor_required
@require_POST
def target_set(request: AuthedRequest, patient_id: int) -> HttpResponse:
    """Set (or replace) one target; with ``remove`` set, remove it."""
    patient = chart_patient_get_for_user(user=request.user, patient_id=patient_id)
    if request.POST.get("remove"):
        code, _dot, name = request.POST.get("value", "").partition(".")
        try:
            patient_target_remove(patient=patient, by=request.user, kind=code, field=name)
        except TargetRefused:
            raise Http404 from None
        messages.success(request, _("The target is removed; the usual bands apply again."))
        return redirect(_chart_url(patient.pk, "targets"))
    form = TargetForm(request.POST, glucose_unit=glucose_unit_for(user=request.user))
    if not form.is_valid():
        return _render_chart(request, patient_id, target_form=form)
    kind, value_field = form.kind_and_field()
    try:
        patient_target_set(
            patient=patient,
            by=request.user,
            kind=kind.code,
            field=value_field.name,
            low=form.canonical(form.cleaned_data["low"]),
            high=form.canonical(form.cleaned_data["high"]),
        )
    except TargetRefused as refused:
        if refused.code == "not_found":
            raise Http404 from None
        form.add_error(None, refused.message)
        return _render_chart(request, patient_id, target_form=form)
    messages.success(request, _("The target is saved; it applies to readings recorded from now on."))
    return redirect(_chart_url(patient.pk, "targets"))
