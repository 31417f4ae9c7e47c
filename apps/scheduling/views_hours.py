"""The clinic admin's "Doctors' hours": each doctor's weekly hours and time
off, and the clinic's booking policy.

Changing hours never cancels a booked appointment: after a change, the
appointments the doctor's hours no longer hold are shown to the admin, who
moves or cancels them with the patient.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.decorators import role_required
from apps.accounts.models import User
from apps.clinics.models import Clinic
from apps.clinics.selectors import UserRole, clinic_get_for_admin
from apps.core.http import AuthedRequest
from apps.scheduling.forms_hours import (
    AvailabilityRuleForm,
    BookingPolicyForm,
    TimeOffForm,
    reminder_offsets_text,
)
from apps.scheduling.models import DEFAULT_REMINDER_OFFSETS_MINUTES, AvailabilityRule
from apps.scheduling.selectors import (
    appointments_outside_hours,
    availability_rule_get_for_clinic,
    clinic_doctor_get,
    clinic_hours,
    clinic_policy,
    clinic_zone,
    time_off_get_for_clinic,
)
from apps.scheduling.services import (
    HoursError,
    availability_rule_create,
    availability_rule_delete,
    availability_rule_update,
    booking_policy_update,
    time_off_create,
    time_off_delete,
)

clinic_admin_only = role_required(UserRole.CLINIC_ADMIN)


def _hours_url(clinic: Clinic, doctor: User | None = None) -> str:
    url = reverse("scheduling:hours", args=[clinic.pk])
    return f"{url}#doctor-{doctor.pk}" if doctor is not None else url


def _after_change(request: AuthedRequest, clinic: Clinic, doctor: User, done: str) -> HttpResponse:
    """Back to the doctor's hours, saying which booked appointments the
    change left outside them (they are listed there)."""
    messages.success(request, done)
    outside = appointments_outside_hours(clinic=clinic, doctor=doctor, now=timezone.now())
    if outside:
        messages.warning(
            request,
            ngettext(
                "%(count)d booked appointment of %(doctor)s is outside their hours now. It is still booked: "
                "move or cancel it with the patient (listed below).",
                "%(count)d booked appointments of %(doctor)s are outside their hours now. They are still booked: "
                "move or cancel them with the patients (listed below).",
                len(outside),
            )
            % {"count": len(outside), "doctor": doctor.full_name},
        )
    return redirect(_hours_url(clinic, doctor))


def _render(request: AuthedRequest, template: str, clinic: Clinic, context: dict[str, Any]) -> HttpResponse:
    zone = clinic_zone(clinic)
    with timezone.override(zone):
        return render(request, template, {"clinic": clinic, "zone": zone.key, **context})


@clinic_admin_only
@require_GET
def hours(request: AuthedRequest, clinic_id: int) -> HttpResponse:
    clinic = clinic_get_for_admin(user=request.user, clinic_id=clinic_id)
    policy = clinic_policy(clinic=clinic)
    return _render(
        request,
        "scheduling/hours/clinic.html",
        clinic,
        {
            "doctors": clinic_hours(clinic=clinic, now=timezone.now()),
            "policy": policy,
            "reminders": policy.reminder_offsets_minutes or DEFAULT_REMINDER_OFFSETS_MINUTES,
        },
    )


@clinic_admin_only
@require_http_methods(["GET", "POST"])
def rule_create(request: AuthedRequest, clinic_id: int, doctor_id: int) -> HttpResponse:
    clinic = clinic_get_for_admin(user=request.user, clinic_id=clinic_id)
    doctor = clinic_doctor_get(clinic=clinic, doctor_id=doctor_id)
    form = AvailabilityRuleForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            availability_rule_create(doctor=doctor, clinic=clinic, **form.cleaned_data, by=request.user)
        except HoursError as refused:
            form.add_error(None, refused.message)
        else:
            return _after_change(
                request, clinic, doctor, _("Hours added for %(doctor)s.") % {"doctor": doctor.full_name}
            )
    return _render(request, "scheduling/hours/rule_form.html", clinic, {"doctor": doctor, "form": form})


def _rule_initial(rule: AvailabilityRule) -> dict[str, Any]:
    return {
        "weekdays": rule.weekdays,
        "start_time": rule.start_time,
        "end_time": rule.end_time,
        "slot_minutes": rule.slot_minutes,
        "buffer_minutes": rule.buffer_minutes,
        "modes": rule.modes,
        "valid_from": rule.valid_from,
        "valid_until": rule.valid_until,
    }


@clinic_admin_only
@require_http_methods(["GET", "POST"])
def rule_edit(request: AuthedRequest, clinic_id: int, rule_id: int) -> HttpResponse:
    clinic = clinic_get_for_admin(user=request.user, clinic_id=clinic_id)
    rule = availability_rule_get_for_clinic(clinic=clinic, rule_id=rule_id)
    form = AvailabilityRuleForm(request.POST if request.method == "POST" else None, initial=_rule_initial(rule))
    if form.is_valid():
        try:
            availability_rule_update(rule=rule, **form.cleaned_data, by=request.user)
        except HoursError as refused:
            form.add_error(None, refused.message)
        else:
            return _after_change(
                request, clinic, rule.doctor, _("Hours of %(doctor)s changed.") % {"doctor": rule.doctor.full_name}
            )
    return _render(
        request, "scheduling/hours/rule_form.html", clinic, {"doctor": rule.doctor, "form": form, "rule": rule}
    )


@clinic_admin_only
@require_POST
def rule_delete(request: AuthedRequest, clinic_id: int, rule_id: int) -> HttpResponse:
    clinic = clinic_get_for_admin(user=request.user, clinic_id=clinic_id)
    rule = availability_rule_get_for_clinic(clinic=clinic, rule_id=rule_id)
    try:
        availability_rule_delete(rule=rule, by=request.user)
    except HoursError as refused:  # the doctor left the clinic meanwhile
        messages.error(request, refused.message)
        return redirect(_hours_url(clinic))
    return _after_change(
        request, clinic, rule.doctor, _("Hours of %(doctor)s deleted.") % {"doctor": rule.doctor.full_name}
    )


@clinic_admin_only
@require_http_methods(["GET", "POST"])
def time_off_add(request: AuthedRequest, clinic_id: int, doctor_id: int) -> HttpResponse:
    clinic = clinic_get_for_admin(user=request.user, clinic_id=clinic_id)
    doctor = clinic_doctor_get(clinic=clinic, doctor_id=doctor_id)
    form = TimeOffForm(request.POST if request.method == "POST" else None, zone=clinic_zone(clinic))
    if form.is_valid():
        try:
            time_off_create(
                doctor=doctor,
                clinic=clinic,
                starts_at=form.cleaned_data["starts_at"],
                ends_at=form.cleaned_data["ends_at"],
                reason=form.cleaned_data["reason"],
                by=request.user,
            )
        except HoursError as refused:
            form.add_error(None, refused.message)
        else:
            return _after_change(
                request, clinic, doctor, _("Time off added for %(doctor)s.") % {"doctor": doctor.full_name}
            )
    return _render(request, "scheduling/hours/time_off_form.html", clinic, {"doctor": doctor, "form": form})


@clinic_admin_only
@require_POST
def time_off_remove(request: AuthedRequest, clinic_id: int, time_off_id: int) -> HttpResponse:
    clinic = clinic_get_for_admin(user=request.user, clinic_id=clinic_id)
    time_off = time_off_get_for_clinic(clinic=clinic, time_off_id=time_off_id)
    try:
        time_off_delete(time_off=time_off, clinic=clinic, by=request.user)
    except HoursError as refused:
        messages.error(request, refused.message)
        return redirect(_hours_url(clinic))
    messages.success(request, _("Time off of %(doctor)s deleted.") % {"doctor": time_off.doctor.full_name})
    return redirect(_hours_url(clinic, time_off.doctor))


@clinic_admin_only
@require_http_methods(["GET", "POST"])
def booking_policy(request: AuthedRequest, clinic_id: int) -> HttpResponse:
    clinic = clinic_get_for_admin(user=request.user, clinic_id=clinic_id)
    policy = clinic_policy(clinic=clinic)
    form = BookingPolicyForm(
        request.POST if request.method == "POST" else None,
        initial={
            "min_notice_minutes": policy.min_notice_minutes,
            "max_ahead_days": policy.max_ahead_days,
            "cancellation_cutoff_hours": policy.cancellation_cutoff_hours,
            "reminders": reminder_offsets_text(policy.reminder_offsets_minutes or DEFAULT_REMINDER_OFFSETS_MINUTES),
        },
    )
    if form.is_valid():
        try:
            booking_policy_update(
                clinic=clinic,
                min_notice_minutes=form.cleaned_data["min_notice_minutes"],
                max_ahead_days=form.cleaned_data["max_ahead_days"],
                cancellation_cutoff_hours=form.cleaned_data["cancellation_cutoff_hours"],
                reminder_offsets_minutes=form.cleaned_data["reminders"],
                by=request.user,
            )
        except HoursError as refused:
            form.add_error(None, refused.message)
        else:
            messages.success(request, _("The booking policy is saved."))
            return redirect(f"{_hours_url(clinic)}#policy")
    return _render(request, "scheduling/hours/policy_form.html", clinic, {"form": form})
