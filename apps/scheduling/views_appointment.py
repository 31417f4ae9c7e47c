"""One appointment: its page for the patient, the doctor and the clinic's
admins, the short link that SMS messages carry, and what staff do to it
(cancel or move it for the patient, mark it completed or missed)."""

from __future__ import annotations

from datetime import date

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from apps.audit.models import AuditAction
from apps.audit.services import audit_record
from apps.clinics.selectors import UserRole, clinics_administered_by, user_roles
from apps.core.http import AuthedRequest
from apps.scheduling.forms import MarkForm, StaffCancelForm, StaffRescheduleForm
from apps.scheduling.models import Appointment, AppointmentStatus
from apps.scheduling.selectors import (
    appointment_get_for_clinic_admin,
    appointment_get_for_marking,
    appointment_get_for_user,
    clinic_zone,
    doctor_free_slots,
)
from apps.scheduling.services import (
    AppointmentChangeError,
    BookingError,
    appointment_cancel,
    appointment_mark,
    appointment_reschedule,
)
from apps.scheduling.slots import Slot


@require_GET
def appointment_short_link(request: AuthedRequest, appointment_id: int) -> HttpResponse:
    """``/a/<id>/``, short enough for an SMS; signing in comes first."""
    return redirect("scheduling:detail", appointment_id=appointment_id)


def _is_admin_of(request: AuthedRequest, appointment: Appointment) -> bool:
    if UserRole.CLINIC_ADMIN not in user_roles(user=request.user):
        return False
    return clinics_administered_by(user=request.user).filter(pk=appointment.clinic_id).exists()


def _move_day(request: AuthedRequest) -> date | None:
    try:
        return date.fromisoformat(request.GET.get("move_day", ""))
    except ValueError:
        return None


@login_required
@require_GET
def appointment_detail(request: AuthedRequest, appointment_id: int) -> HttpResponse:
    appointment = appointment_get_for_user(user=request.user, appointment_id=appointment_id)
    is_patient = appointment.patient_id == request.user.pk
    is_admin = _is_admin_of(request, appointment)
    if not is_patient:
        audit_record(
            action=AuditAction.VIEW,
            actor=request.user,
            object_type="appointment",
            object_id=appointment.pk,
            patient=appointment.patient,
            clinic_id=appointment.clinic_id,
        )
    now = timezone.now()
    booked = appointment.status == AppointmentStatus.BOOKED
    move_day = _move_day(request) if is_admin and booked else None
    move_slots: list[Slot] = []
    if move_day is not None:
        move_slots = doctor_free_slots(
            doctor=appointment.doctor, clinic=appointment.clinic, first_day=move_day, days=1, now=now
        )
    # Staff see the clinic's local time; the patient their own.
    zone = clinic_zone(appointment.clinic) if not is_patient else timezone.get_current_timezone()
    with timezone.override(zone):
        return render(
            request,
            "scheduling/appointment.html",
            {
                "appointment": appointment,
                "is_patient": is_patient,
                "is_admin": is_admin,
                "can_change": booked and appointment.ends_at > now,
                "can_mark": booked and appointment.starts_at <= now and (is_admin or not is_patient),
                "move_day": move_day,
                "move_slots": move_slots,
                "cancel_form": StaffCancelForm(),
                "today": now.astimezone(clinic_zone(appointment.clinic)).date(),
            },
        )


def _back(appointment: Appointment) -> HttpResponse:
    return redirect("scheduling:detail", appointment_id=appointment.pk)


@login_required
@require_POST
def staff_cancel(request: AuthedRequest, appointment_id: int) -> HttpResponse:
    appointment = appointment_get_for_clinic_admin(user=request.user, appointment_id=appointment_id)
    form = StaffCancelForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        appointment_cancel(appointment=appointment, by=request.user, reason=reason, staff=True)
    except AppointmentChangeError as refused:
        messages.error(request, refused.message)
    else:
        messages.success(request, _("The appointment is cancelled; the patient is told."))
    return _back(appointment)


@login_required
@require_POST
def staff_reschedule(request: AuthedRequest, appointment_id: int) -> HttpResponse:
    appointment = appointment_get_for_clinic_admin(user=request.user, appointment_id=appointment_id)
    form = StaffRescheduleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a time first."))
        return _back(appointment)
    try:
        moved = appointment_reschedule(
            appointment=appointment,
            starts_at=form.cleaned_data["starts_at"],
            by=request.user,
            reason=form.cleaned_data["reason"],
            staff=True,
        )
    except (AppointmentChangeError, BookingError) as refused:
        messages.error(request, refused.message)
        return _back(appointment)
    messages.success(request, _("The appointment is moved; the patient is told."))
    return _back(moved)


@login_required
@require_POST
def mark(request: AuthedRequest, appointment_id: int) -> HttpResponse:
    appointment = appointment_get_for_marking(user=request.user, appointment_id=appointment_id)
    form = MarkForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose completed or did not come."))
        return _back(appointment)
    try:
        appointment_mark(appointment=appointment, status=form.cleaned_data["status"], by=request.user)
    except AppointmentChangeError as refused:
        messages.error(request, refused.message)
    else:
        messages.success(request, _("Saved."))
    return _back(appointment)
