"""Pages: quick entry (the patient's own, and staff for a patient), "My
readings", a patient's readings for their doctor, one reading with its
advice. Thin: the selectors check access, the services write."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from apps.accounts.decorators import consent_required, role_required
from apps.accounts.models import User
from apps.accounts.selectors import patient_can_be_seen_by, patient_get_for_user
from apps.clinics.selectors import UserRole
from apps.core.http import AuthedRequest
from apps.vitals.display import field_display, reading_values_display
from apps.vitals.flags import advice_for
from apps.vitals.forms import ReadingFilterForm, ReadingForm
from apps.vitals.kinds import KINDS, Kind
from apps.vitals.models import Alert, Reading, Source
from apps.vitals.selectors import (
    glucose_unit_for,
    patient_get_for_reading_entry,
    patients_for_reading_entry,
    reading_get_for_user,
    readings_for_user,
    readings_last_values,
)
from apps.vitals.services import ReadingRefused, emergency_number, reading_record

PAGE_SIZE = 50
staff_required = role_required(UserRole.DOCTOR, UserRole.CLINIC_ADMIN)
doctor_required = role_required(UserRole.DOCTOR)


def _kind_or_404(code: str) -> Kind:
    kind = KINDS.get(code)
    if kind is None:
        raise Http404
    return kind


def _readings_page(request: AuthedRequest, patient: User, template: str) -> HttpResponse:
    form = ReadingFilterForm(request.GET or None)
    kind, period = "", "30"
    if form.is_valid():
        kind = form.cleaned_data["kind"] or ""
        period = form.cleaned_data["period"] or "30"
    since = None if period == "all" else timezone.now() - timedelta(days=int(period))
    readings = readings_for_user(user=request.user, patient_id=patient.pk, kind=kind or None, since=since)
    page = Paginator(readings.select_related("alert"), PAGE_SIZE).get_page(request.GET.get("page"))
    unit = glucose_unit_for(user=request.user)
    rows = [(reading, reading_values_display(reading, glucose_unit=unit)) for reading in page]
    return render(
        request,
        template,
        {
            "patient": patient,
            "form": form,
            "page": page,
            "rows": rows,
            "kind": kind,
            "period": period,
            "kinds": list(KINDS.values()),
        },
    )


@consent_required
@require_GET
def my_readings(request: AuthedRequest) -> HttpResponse:
    return _readings_page(request, request.user, "vitals/my_readings.html")


@doctor_required
@require_GET
def patient_readings(request: AuthedRequest, patient_id: int) -> HttpResponse:
    patient = patient_get_for_user(user=request.user, patient_id=patient_id)
    return _readings_page(request, patient, "vitals/patient_readings.html")


def _hints(request: AuthedRequest, patient: User, kind: Kind, unit: str) -> tuple[dict[str, str], str, Reading | None]:
    last = readings_last_values(user=request.user, patient=patient, kind=kind.code)
    if last is None:
        return {}, "", None
    hints = {
        name: _("Last: %(value)s") % {"value": field_display(kind=kind.code, name=name, value=value, glucose_unit=unit)}
        for name, value in last.values.items()
        if name in kind.field_names
    }
    return hints, reading_values_display(last, glucose_unit=unit), last


def _entry(request: AuthedRequest, *, patient: User, kind: Kind, source: str) -> HttpResponse:
    unit = glucose_unit_for(user=request.user)
    hints, last_text, last = _hints(request, patient, kind, unit)
    form = ReadingForm(
        request.POST if request.method == "POST" else None,
        initial={"measured_at": timezone.localtime().replace(second=0, microsecond=0)},
        kind=kind,
        glucose_unit=unit,
        hints=hints,
    )
    if request.method == "POST" and form.is_valid():
        try:
            recorded = reading_record(
                patient=patient,
                by=request.user,
                kind=kind.code,
                values=form.values(),
                measured_at=form.cleaned_data["measured_at"],
                source=source,
                note=form.cleaned_data["note"],
                context=form.cleaned_data.get("context", ""),
                unit=form.cleaned_data.get("unit", ""),
            )
        except ReadingRefused as refused:
            if refused.code == "not_found":
                raise Http404 from None
            for field, field_messages in refused.errors.items():
                for message in field_messages:
                    form.add_error(field if field in form.fields else None, message)
        else:
            if recorded.created:
                messages.success(request, _("Saved."))
            else:
                messages.info(request, _("This reading was already saved."))
            return redirect("vitals:reading", reading_id=recorded.reading.pk)
    return render(
        request,
        "vitals/entry.html",
        {
            "patient": patient,
            "own": patient.pk == request.user.pk,
            "kind": kind,
            "kinds": list(KINDS.values()),
            "form": form,
            "last": last,
            "last_text": last_text,
        },
    )


@consent_required
@require_http_methods(["GET", "POST"])
def entry(request: AuthedRequest, kind: str) -> HttpResponse:
    return _entry(request, patient=request.user, kind=_kind_or_404(kind), source=Source.MANUAL)


@staff_required
@require_http_methods(["GET", "POST"])
def staff_entry(request: AuthedRequest, patient_id: int, kind: str) -> HttpResponse:
    patient = patient_get_for_reading_entry(user=request.user, patient_id=patient_id)
    return _entry(request, patient=patient, kind=_kind_or_404(kind), source=Source.STAFF)


@staff_required
@require_GET
def patient_chooser(request: AuthedRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:100]
    patients = patients_for_reading_entry(user=request.user, query=query)
    return render(
        request, "vitals/patients.html", {"patients": patients, "query": query, "kinds": list(KINDS.values())}
    )


@login_required
@require_GET
def reading_detail(request: AuthedRequest, reading_id: int) -> HttpResponse:
    reading = reading_get_for_user(user=request.user, reading_id=reading_id)
    unit = glucose_unit_for(user=request.user)
    alert = Alert.objects.filter(reading=reading).first()
    return render(
        request,
        "vitals/reading.html",
        {
            "reading": reading,
            "values_text": reading_values_display(reading, glucose_unit=unit),
            "advice": advice_for(reading.category, emergency_number=emergency_number()),
            "alert": alert,
            "own": reading.patient_id == request.user.pk,
            "can_read_record": patient_can_be_seen_by(user=request.user, patient=reading.patient),
        },
    )
