"""The doctor's dashboard (their home page), its triage queue as a partial
that static/js/dashboard.js re-reads when an alert arrives, the triage
actions, and "My patients"."""

from __future__ import annotations

import secrets
from datetime import date
from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.decorators import role_required
from apps.accounts.selectors import patient_get_for_user
from apps.care.selectors_dashboard import (
    PatientFilters,
    Triage,
    dashboard_for_doctor,
    dashboard_today,
    dashboard_triage,
    overdue_days,
    patients_page_for_doctor,
)
from apps.care.services_dashboard import MESSAGE_MAX_CHARS, MessageRefused, patient_message_send
from apps.clinics.models import Clinic
from apps.clinics.selectors import UserRole, clinics_administered_by, clinics_of_doctor, user_roles
from apps.consults.selectors import consults_waiting_for
from apps.core.http import AuthedRequest, date_param
from apps.scheduling.models import ConsultMode
from apps.scheduling.selectors import clinic_zone, doctor_free_day
from apps.scheduling.services import BookingError, appointment_book
from apps.vitals.models import ACKNOWLEDGE_NOTE_MAX_CHARS
from apps.vitals.selectors import alert_get_for_doctor, glucose_unit_for
from apps.vitals.services import AlertRefused, alert_acknowledge

doctor_required = role_required(UserRole.DOCTOR)


def _triage_context(request: AuthedRequest, triage: Triage, error: str = "") -> dict[str, Any]:
    return {
        "triage": triage,
        "glucose_unit": glucose_unit_for(user=request.user),
        "note_max": ACKNOWLEDGE_NOTE_MAX_CHARS,
        "triage_error": error,
    }


def dashboard_page(request: AuthedRequest) -> HttpResponse:
    """The doctor's home: today, waiting now, the triage queue, referrals
    and the numbers at a glance (also rendered at "/" for doctors)."""
    dashboard = dashboard_for_doctor(doctor=request.user, now=timezone.now())
    roles = user_roles(user=request.user)
    return render(
        request,
        "care/dashboard.html",
        {
            "dashboard": dashboard,
            "overdue_days": overdue_days(),
            "admin_clinics": clinics_administered_by(user=request.user) if UserRole.CLINIC_ADMIN in roles else [],
            **_triage_context(request, dashboard.triage),
        },
    )


dashboard = doctor_required(require_GET(dashboard_page))


@doctor_required
@require_GET
def triage(request: AuthedRequest) -> HttpResponse:
    """The triage queue alone: what the dashboard's script swaps in when an
    alert arrives or its socket reconnects."""
    return render(
        request, "care/dashboard_triage.html", _triage_context(request, dashboard_triage(doctor=request.user))
    )


@doctor_required
@require_GET
def today(request: AuthedRequest) -> HttpResponse:
    """Today's appointments alone: what the dashboard's script swaps in when
    the waiting room changes (a patient arrives, a consult starts or ends)."""
    now = timezone.now()
    rows = dashboard_today(doctor=request.user, now=now, waiting=consults_waiting_for(doctor=request.user, now=now))
    return render(request, "care/dashboard_today.html", {"today": rows})


def _is_htmx(request: AuthedRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


@doctor_required
@require_POST
def alert_acknowledge_view(request: AuthedRequest, alert_id: int) -> HttpResponse:
    """Acknowledge an alert with a short note: it leaves the queue (and
    stays in the chart). From htmx the answer is the new queue; without
    JavaScript, back to the dashboard."""
    alert = alert_get_for_doctor(user=request.user, alert_id=alert_id)
    error = ""
    try:
        alert_acknowledge(alert=alert, by=request.user, note=request.POST.get("note", ""))
    except AlertRefused as refused:
        if refused.code == "not_found":
            raise
        error = refused.message
    if _is_htmx(request):
        context = _triage_context(request, dashboard_triage(doctor=request.user), error=error)
        return render(request, "care/dashboard_triage.html", context)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, _("Alert acknowledged."))
    return redirect(reverse("care:dashboard") + "#triage")


class MessageForm(forms.Form):
    text = forms.CharField(
        label=gettext_lazy("Message"),
        max_length=MESSAGE_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("Sent in the app and by SMS. Keep it short; no details of results by SMS."),
    )
    token = forms.CharField(widget=forms.HiddenInput)


@doctor_required
@require_http_methods(["GET", "POST"])
def patient_message(request: AuthedRequest, patient_id: int) -> HttpResponse:
    """Send one of the doctor's patients a short message (app and SMS)."""
    patient = patient_get_for_user(user=request.user, patient_id=patient_id)
    form = MessageForm(request.POST or None, initial={"token": secrets.token_hex(16)})
    if request.method == "POST" and form.is_valid():
        try:
            patient_message_send(
                doctor=request.user, patient=patient, text=form.cleaned_data["text"], token=form.cleaned_data["token"]
            )
        except MessageRefused as refused:
            if refused.code == "not_found":
                raise Http404 from None
            form.add_error("text", refused.message)
        else:
            messages.success(request, _("Message sent to %(name)s.") % {"name": patient.full_name})
            return redirect(reverse("care:dashboard") + "#triage")
    return render(request, "care/patient_message.html", {"patient": patient, "form": form}, status=200)


class PatientFilterForm(forms.Form):
    q = forms.CharField(label=gettext_lazy("Name or phone"), required=False, max_length=100)
    alerts = forms.BooleanField(label=gettext_lazy("With open alerts"), required=False)
    overdue = forms.BooleanField(label=gettext_lazy("Readings overdue"), required=False)
    condition = forms.RegexField(
        label=gettext_lazy("Condition (ICD-10 code)"),
        regex=r"^[A-Za-z][0-9A-Za-z.]{0,7}$",
        required=False,
        max_length=8,
        error_messages={"invalid": gettext_lazy("Give the start of an ICD-10 code, e.g. I10 or E11.")},
    )
    contact_from = forms.DateField(
        label=gettext_lazy("Last contact from"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    contact_to = forms.DateField(
        label=gettext_lazy("to"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start: date | None = cleaned.get("contact_from")
        end: date | None = cleaned.get("contact_to")
        if start and end and start > end:
            self.add_error("contact_to", _("The end of the range must be after its start."))
        return cleaned

    def filters(self) -> PatientFilters:
        if not self.is_valid():
            return PatientFilters()
        data = self.cleaned_data
        return PatientFilters(
            query=data.get("q") or "",
            open_alerts=bool(data.get("alerts")),
            overdue=bool(data.get("overdue")),
            condition=(data.get("condition") or "").upper(),
            contact_from=data.get("contact_from"),
            contact_to=data.get("contact_to"),
        )


@doctor_required
@require_GET
def patients(request: AuthedRequest) -> HttpResponse:
    """My patients: search, filters, each row with the latest blood pressure
    and glucose (in the viewer's unit) and flags; paginated."""
    form = PatientFilterForm(request.GET or None)
    page, rows = patients_page_for_doctor(
        doctor=request.user, filters=form.filters(), page=request.GET.get("page"), now=timezone.now()
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "care/patients.html",
        {
            "form": form,
            "page": page,
            "rows": rows,
            "glucose_unit": glucose_unit_for(user=request.user),
            "query_string": query.urlencode(),
            "more_filters": any(
                request.GET.get(name) for name in ("alerts", "overdue", "condition", "contact_from", "contact_to")
            ),
            "overdue_days": overdue_days(),
        },
    )


class BookForm(forms.Form):
    clinic = forms.TypedChoiceField(coerce=int, label=gettext_lazy("Clinic"))
    starts_at = forms.DateTimeField()
    mode = forms.ChoiceField(choices=ConsultMode.choices, label=gettext_lazy("How"))
    reason = forms.CharField(required=False, max_length=500, label=gettext_lazy("Reason for the visit"))

    def __init__(self, *args: Any, clinics: list[Clinic], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["clinic"].choices = [(clinic.pk, clinic.name) for clinic in clinics]  # type: ignore[attr-defined]  # a TypedChoiceField


@doctor_required
@require_http_methods(["GET", "POST"])
def patient_book(request: AuthedRequest, patient_id: int) -> HttpResponse:
    """Book the patient a consult with me from the triage queue: as soon as
    possible (today's free times first; the clinic's minimum notice applies)
    or a follow-up on a later day. The doctor's free times at one of their
    clinics on a day, then one click books it (scheduling's
    ``appointment_book``; the patient is told by SMS)."""
    patient = patient_get_for_user(user=request.user, patient_id=patient_id)
    clinics = list(clinics_of_doctor(user=request.user).order_by("name"))
    if not clinics:
        raise Http404
    data = request.POST if request.method == "POST" else request.GET
    clinic = next((c for c in clinics if str(c.pk) == data.get("clinic")), clinics[0])
    error = ""
    form = BookForm(request.POST or None, clinics=clinics, initial={"clinic": clinic.pk})
    if request.method == "POST":
        if form.is_valid():
            try:
                appointment = appointment_book(
                    patient=patient,
                    doctor=request.user,
                    clinic=clinic,
                    starts_at=form.cleaned_data["starts_at"],
                    mode=form.cleaned_data["mode"],
                    reason=form.cleaned_data["reason"],
                    booked_by=request.user,
                )
            except BookingError as refused:
                error = refused.message
            else:
                messages.success(request, _("Booked; the patient is told by SMS."))
                return redirect("scheduling:detail", appointment.pk)
        else:
            error = _("Choose a time from the list.")
    free = doctor_free_day(doctor=request.user, clinic=clinic, day=date_param(data.get("day")), now=timezone.now())
    with timezone.override(clinic_zone(clinic)):
        return render(
            request,
            "care/patient_book.html",
            {
                "patient": patient,
                "clinics": clinics,
                "clinic": clinic,
                "day": free.day,
                "previous_day": free.previous_day,
                "next_day": free.next_day,
                "slots": free.slots,
                "form": form,
                "error": error,
                "modes": ConsultMode.choices,
            },
        )
