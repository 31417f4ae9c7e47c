"""CSV import pages: the patient's own (/vitals/import/) and staff for a
patient (/vitals/patients/<id>/import/), the downloadable template. Upload
→ preview (per-row errors, a summary, duplicates) → confirm → all or
nothing through ``readings_record_many``. Thin: csv_import.py reads the
file, import_services.py checks, keeps and records."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.decorators import consent_required, role_required
from apps.accounts.models import User
from apps.accounts.selectors import patient_can_be_seen_by
from apps.clinics.selectors import UserRole
from apps.core.http import AuthedRequest
from apps.vitals.csv_import import COLUMNS, MAX_BYTES, MAX_ROWS, CsvParsed, CsvRefused, CsvRow, csv_parse, template_csv
from apps.vitals.display import context_label
from apps.vitals.import_services import (
    ImportPreview,
    ImportRefused,
    import_upload_keep,
    import_upload_take,
    readings_import,
    readings_import_preview,
)
from apps.vitals.kinds import BLOOD_PRESSURE, GLUCOSE, kind_get
from apps.vitals.selectors import glucose_unit_for, patient_get_for_reading_entry

staff_required = role_required(UserRole.DOCTOR, UserRole.CLINIC_ADMIN)
ERRORS_SHOWN = 200
SAMPLE_ROWS = 10
PERIODS_DAYS = (7, 30, 90, 365)


class CsvUploadForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("CSV file"),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,text/csv,text/plain"}),
    )


def _number(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _row_text(row: CsvRow) -> str:
    """A row as read, in its own units: '128/82 mmHg, pulse 70', '6.1 mmol/L'."""
    values = row.values
    if row.kind == BLOOD_PRESSURE.code:
        text = f"{_number(values['systolic'])}/{_number(values['diastolic'])} mmHg"
        if "pulse" in values:
            text += ", " + _("pulse %(pulse)s") % {"pulse": _number(values["pulse"])}
        return text
    kind = kind_get(row.kind)
    value_field = kind.fields[0]
    unit = row.unit if kind is GLUCOSE else str(value_field.unit_label)
    return f"{_number(values[value_field.name])} {unit}"


def _read_upload(form: CsvUploadForm) -> bytes:
    upload = form.cleaned_data["file"]
    if upload.size is not None and upload.size > MAX_BYTES:
        raise CsvRefused(_("The file is larger than %(mb)s MB.") % {"mb": MAX_BYTES // (1024 * 1024)})
    return bytes(upload.read(MAX_BYTES + 1))


def _parse(request: AuthedRequest, data: bytes) -> CsvParsed:
    return csv_parse(data=data, tz=timezone.get_current_timezone(), glucose_unit=glucose_unit_for(user=request.user))


def _urls(patient: User, own: bool) -> dict[str, str]:
    if own:
        return {"upload": reverse("vitals:import"), "confirm": reverse("vitals:import_confirm")}
    return {
        "upload": reverse("vitals:staff_import", args=[patient.pk]),
        "confirm": reverse("vitals:staff_import_confirm", args=[patient.pk]),
    }


def _page(
    request: AuthedRequest,
    *,
    patient: User,
    own: bool,
    form: CsvUploadForm,
    preview: ImportPreview | None = None,
    token: str = "",
    refusal: str = "",
    errors: list[Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    shown = errors if errors is not None else (preview.errors if preview else [])
    sample = [
        (row, _row_text(row), context_label(row.context) if row.context else "")
        for row in (preview.rows[:SAMPLE_ROWS] if preview else [])
    ]
    return render(
        request,
        "vitals/import.html",
        {
            "patient": patient,
            "own": own,
            "form": form,
            "preview": preview,
            "token": token,
            "refusal": refusal,
            "errors": shown[:ERRORS_SHOWN],
            "errors_hidden": max(0, len(shown) - ERRORS_SHOWN),
            "sample": sample,
            "urls": _urls(patient, own),
            "columns": COLUMNS,
            "max_rows": MAX_ROWS,
            "max_mb": MAX_BYTES // (1024 * 1024),
        },
        status=status,
    )


def _upload(request: AuthedRequest, *, patient: User, own: bool) -> HttpResponse:
    if request.method != "POST":
        return _page(request, patient=patient, own=own, form=CsvUploadForm())
    form = CsvUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _page(request, patient=patient, own=own, form=form, status=400)
    try:
        data = _read_upload(form)
        parsed = _parse(request, data)
        preview = readings_import_preview(by=request.user, patient=patient, parsed=parsed)
    except CsvRefused as refused:
        return _page(request, patient=patient, own=own, form=CsvUploadForm(), refusal=refused.message, status=400)
    except ImportRefused as refused:
        return _refused(request, refused, patient=patient, own=own)
    token = import_upload_keep(by=request.user, patient=patient, data=data) if preview.ok else ""
    return _page(request, patient=patient, own=own, form=CsvUploadForm(), preview=preview, token=token)


def _refused(request: AuthedRequest, refused: ImportRefused, *, patient: User, own: bool) -> HttpResponse:
    if refused.code == "not_found":
        raise Http404
    form = CsvUploadForm()
    if refused.code == "invalid":
        return _page(
            request,
            patient=patient,
            own=own,
            form=form,
            refusal=_("Nothing was imported: some rows are refused. Correct them and upload the file again."),
            errors=refused.errors,
            status=400,
        )
    return _page(request, patient=patient, own=own, form=form, refusal=refused.message, status=400)


def _after_import(request: AuthedRequest, *, patient: User, own: bool, parsed: CsvParsed) -> str:
    """Where the imported readings show: the readings page over a period
    that holds the oldest of them (the chooser for a clinic admin)."""
    if not own and not patient_can_be_seen_by(user=request.user, patient=patient):
        return reverse("vitals:patients")
    oldest = min(row.measured_at for row in parsed.rows)
    age = timezone.now() - oldest
    period = next((str(days) for days in PERIODS_DAYS if age <= timedelta(days=days)), "all")
    base = reverse("vitals:mine") if own else reverse("vitals:patient_readings", args=[patient.pk])
    return f"{base}?period={period}"


def _confirm(request: AuthedRequest, *, patient: User, own: bool) -> HttpResponse:
    token = request.POST.get("token", "")
    try:
        data = import_upload_take(by=request.user, patient=patient, token=token)
        parsed = _parse(request, data)
        result = readings_import(by=request.user, patient=patient, parsed=parsed)
    except CsvRefused as refused:  # the same bytes were read before: only if the code changed meanwhile
        return _page(request, patient=patient, own=own, form=CsvUploadForm(), refusal=refused.message, status=400)
    except ImportRefused as refused:
        return _refused(request, refused, patient=patient, own=own)
    text = ngettext("Imported %(count)s reading.", "Imported %(count)s readings.", result.created) % {
        "count": result.created
    }
    if result.duplicates:
        text += " " + ngettext("%(count)s was already saved.", "%(count)s were already saved.", result.duplicates) % {
            "count": result.duplicates
        }
    messages.success(request, text)
    if result.alerts:
        messages.warning(
            request,
            ngettext(
                "%(count)s reading needs a doctor's attention soon: the doctors have been alerted.",
                "%(count)s readings need a doctor's attention soon: the doctors have been alerted.",
                result.alerts,
            )
            % {"count": result.alerts},
        )
    return redirect(_after_import(request, patient=patient, own=own, parsed=parsed))


@consent_required
@require_http_methods(["GET", "POST"])
def import_mine(request: AuthedRequest) -> HttpResponse:
    return _upload(request, patient=request.user, own=True)


@consent_required
@require_POST
def import_mine_confirm(request: AuthedRequest) -> HttpResponse:
    return _confirm(request, patient=request.user, own=True)


@staff_required
@require_http_methods(["GET", "POST"])
def staff_import(request: AuthedRequest, patient_id: int) -> HttpResponse:
    patient = patient_get_for_reading_entry(user=request.user, patient_id=patient_id)
    return _upload(request, patient=patient, own=False)


@staff_required
@require_POST
def staff_import_confirm(request: AuthedRequest, patient_id: int) -> HttpResponse:
    patient = patient_get_for_reading_entry(user=request.user, patient_id=patient_id)
    return _confirm(request, patient=patient, own=False)


@login_required
@require_GET
def import_template(request: AuthedRequest) -> HttpResponse:
    """The header and two example rows, glucose in the user's unit; with a
    BOM so that a spreadsheet opens it as UTF-8."""
    body = "\ufeff" + template_csv(glucose_unit=glucose_unit_for(user=request.user))
    response = HttpResponse(body.encode(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="readings-template.csv"'
    return response
