from __future__ import annotations

import zoneinfo
from collections import defaultdict
from datetime import date, datetime, time, timedelta

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.decorators import consent_required, patient_required, role_required
from apps.accounts.models import User
from apps.accounts.selectors import consent_is_current
from apps.accounts.services import consent_give, patient_register_by_staff
from apps.audit.models import AuditAction
from apps.audit.services import audit_record
from apps.clinics.models import Clinic
from apps.clinics.selectors import UserRole, clinic_get_for_admin
from apps.core.http import AuthedRequest
from apps.scheduling.forms import BookingForm, CancelForm, DoctorSearchForm, StaffBookingForm
from apps.scheduling.ics import appointment_ics
from apps.scheduling.models import Appointment
from apps.scheduling.selectors import (
    appointment_get_for_user,
    clinic_calendar,
    clinic_zone,
    doctor_calendar,
    doctor_free_slots,
    doctor_practises_at,
    doctor_search,
    patient_appointments,
)
from apps.scheduling.services import (
    AppointmentChangeError,
    BookingError,
    appointment_book,
    appointment_cancel,
    appointment_reschedule,
)
from apps.scheduling.slots import Slot

SEARCH_DAYS = 14


@patient_required
@require_GET
def my_appointments(request: AuthedRequest) -> HttpResponse:
    upcoming, past = patient_appointments(patient=request.user, now=timezone.now())
    return render(request, "scheduling/my_appointments.html", {"upcoming": upcoming, "past": past})


@patient_required
@require_GET
def find_doctor(request: AuthedRequest) -> HttpResponse:
    """Doctors of the whole network with their earliest free slot, earliest first."""
    form = DoctorSearchForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    results = doctor_search(
        specialty=filters.get("specialty"),
        clinic=filters.get("clinic"),
        language=filters.get("language") or "",
        days=SEARCH_DAYS,
        now=timezone.now(),
    )
    return render(request, "scheduling/find_doctor.html", {"form": form, "results": results})


def _week_start(request: AuthedRequest, zone_today: date) -> date:
    try:
        requested = date.fromisoformat(request.GET.get("week", ""))
    except ValueError:
        return zone_today
    return max(zone_today, requested)


def _slots_by_day(slots: list[Slot]) -> list[tuple[date, list[Slot]]]:
    by_day: dict[date, list[Slot]] = defaultdict(list)
    viewer_zone = timezone.get_current_timezone()
    for slot in slots:
        by_day[slot.start.astimezone(viewer_zone).date()].append(slot)
    return sorted(by_day.items())


def _doctor_at(doctor_id: int, clinic_id: int) -> tuple[User, Clinic]:
    doctor = get_object_or_404(User, pk=doctor_id, doctor_profile__isnull=False)
    clinic = get_object_or_404(Clinic, pk=clinic_id, is_active=True)
    if not doctor_practises_at(doctor=doctor, clinic=clinic):
        raise Http404
    return doctor, clinic


@patient_required
@require_GET
def doctor_week(request: AuthedRequest, doctor_id: int, clinic_id: int) -> HttpResponse:
    doctor, clinic = _doctor_at(doctor_id, clinic_id)
    now = timezone.now()
    today = now.astimezone(clinic_zone(clinic)).date()
    first_day = _week_start(request, today)
    slots = doctor_free_slots(doctor=doctor, clinic=clinic, first_day=first_day, days=7, now=now)
    return render(
        request,
        "scheduling/doctor_week.html",
        {
            "doctor": doctor,
            "clinic": clinic,
            "days": _slots_by_day(slots),
            "first_day": first_day,
            "next_week": first_day + timedelta(days=7),
            "previous_week": first_day - timedelta(days=7) if first_day > today else None,
            "reschedule": request.GET.get("reschedule", ""),
        },
    )


@consent_required
@require_http_methods(["GET", "POST"])
def book(request: AuthedRequest, doctor_id: int, clinic_id: int) -> HttpResponse:
    doctor, clinic = _doctor_at(doctor_id, clinic_id)
    data = request.POST if request.method == "POST" else request.GET
    probe = BookingForm(data)
    probe.is_valid()  # only the time matters here; the rest is checked below
    starts_at = probe.cleaned_data.get("starts_at")
    if starts_at is None:
        messages.error(request, _("Choose a time first."))
        return redirect("scheduling:doctor_week", doctor_id=doctor.pk, clinic_id=clinic.pk)
    slot = next(
        (
            s
            for s in doctor_free_slots(
                doctor=doctor,
                clinic=clinic,
                first_day=starts_at.astimezone(clinic_zone(clinic)).date(),
                days=1,
                now=timezone.now(),
            )
            if s.start == starts_at
        ),
        None,
    )
    if slot is None:
        messages.error(request, _("This time is no longer free. Please choose another."))
        return redirect("scheduling:doctor_week", doctor_id=doctor.pk, clinic_id=clinic.pk)
    form = BookingForm(
        request.POST if request.method == "POST" else None,
        # Video when offered (the app's way to consult), else the first offered.
        initial={"starts_at": starts_at.isoformat(), "mode": "video" if "video" in slot.modes else min(slot.modes)},
        modes=slot.modes,
    )
    if request.method == "POST" and form.is_valid():
        try:
            appointment_book(
                patient=request.user,
                doctor=doctor,
                clinic=clinic,
                starts_at=starts_at,
                mode=form.cleaned_data["mode"],
                reason=form.cleaned_data["reason"],
                booked_by=request.user,
            )
        except BookingError as refused:
            form.add_error(None, refused.message)
        else:
            messages.success(request, _("Your appointment is booked."))
            return redirect("scheduling:mine")
    return render(request, "scheduling/book.html", {"doctor": doctor, "clinic": clinic, "slot": slot, "form": form})


@patient_required
@require_POST
def cancel(request: AuthedRequest, appointment_id: int) -> HttpResponse:
    appointment = appointment_get_for_user(user=request.user, appointment_id=appointment_id)
    if appointment.patient_id != request.user.pk:
        raise Http404
    form = CancelForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        appointment_cancel(appointment=appointment, by=request.user, reason=reason)
    except AppointmentChangeError as refused:
        messages.error(request, refused.message)
    else:
        messages.success(request, _("Your appointment is cancelled."))
    return redirect("scheduling:mine")


@patient_required
@require_POST
def reschedule(request: AuthedRequest, appointment_id: int) -> HttpResponse:
    appointment = appointment_get_for_user(user=request.user, appointment_id=appointment_id)
    if appointment.patient_id != request.user.pk:
        raise Http404
    form = BookingForm(request.POST)
    form.fields["mode"].required = False
    if not form.is_valid():
        messages.error(request, _("Choose a time first."))
        return redirect("scheduling:mine")
    try:
        appointment_reschedule(
            appointment=appointment,
            starts_at=form.cleaned_data["starts_at"],
            by=request.user,
            mode=form.cleaned_data["mode"] or None,
        )
    except (AppointmentChangeError, BookingError) as refused:
        messages.error(request, refused.message)
    else:
        messages.success(request, _("Your appointment is moved."))
    return redirect("scheduling:mine")


@require_GET
def calendar_file(request: AuthedRequest, appointment_id: int) -> HttpResponse:
    if not request.user.is_authenticated:
        raise Http404
    appointment = appointment_get_for_user(user=request.user, appointment_id=appointment_id)
    audit_record(
        action=AuditAction.EXPORT,
        actor=request.user,
        object_type="appointment",
        object_id=appointment.pk,
        patient=appointment.patient,
        clinic_id=appointment.clinic_id,
    )
    response = HttpResponse(appointment_ics(appointment), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="telemed-appointment-{appointment.pk}.ics"'
    return response


def _calendar_range(request: AuthedRequest, zone: zoneinfo.ZoneInfo) -> tuple[date, int, datetime, datetime]:
    """The day or week asked for (``?day=YYYY-MM-DD&span=day|week``), in ``zone``."""
    today = timezone.now().astimezone(zone).date()
    try:
        first = date.fromisoformat(request.GET.get("day", ""))
    except ValueError:
        first = today
    days = 1 if request.GET.get("span") == "day" else 7
    start = datetime.combine(first, time(0), tzinfo=zone)
    return first, days, start, datetime.combine(first + timedelta(days=days), time(0), tzinfo=zone)


def _by_day(appointments: list[Appointment], zone: zoneinfo.ZoneInfo) -> list[tuple[date, list[Appointment]]]:
    grouped: dict[date, list[Appointment]] = defaultdict(list)
    for appointment in appointments:
        grouped[appointment.starts_at.astimezone(zone).date()].append(appointment)
    return sorted(grouped.items())


@role_required(UserRole.CLINIC_ADMIN)
@require_GET
def clinic_calendar_view(request: AuthedRequest, clinic_id: int) -> HttpResponse:
    clinic = clinic_get_for_admin(user=request.user, clinic_id=clinic_id)
    zone = clinic_zone(clinic)
    first, days, start, end = _calendar_range(request, zone)
    with timezone.override(zone):
        return render(
            request,
            "scheduling/calendar.html",
            {
                "title_clinic": clinic,
                "days": _by_day(clinic_calendar(clinic=clinic, start=start, end=end), zone),
                "first": first,
                "span": "day" if days == 1 else "week",
                "previous": first - timedelta(days=days),
                "next": first + timedelta(days=days),
                "zone": zone.key,
            },
        )


@role_required(UserRole.DOCTOR)
@require_GET
def doctor_calendar_view(request: AuthedRequest) -> HttpResponse:
    zone = timezone.get_current_timezone()
    assert isinstance(zone, zoneinfo.ZoneInfo)
    first, days, start, end = _calendar_range(request, zone)
    return render(
        request,
        "scheduling/calendar.html",
        {
            "days": _by_day(doctor_calendar(doctor=request.user, start=start, end=end), zone),
            "first": first,
            "span": "day" if days == 1 else "week",
            "previous": first - timedelta(days=days),
            "next": first + timedelta(days=days),
            "zone": zone.key,
        },
    )


@role_required(UserRole.CLINIC_ADMIN)
@require_http_methods(["GET", "POST"])
def staff_book(request: AuthedRequest, clinic_id: int) -> HttpResponse:
    """Book for a patient: find them by phone (or register them), pick a
    doctor and day, then a free time."""
    clinic = clinic_get_for_admin(user=request.user, clinic_id=clinic_id)
    doctors = list(
        User.objects.filter(memberships__clinic=clinic, memberships__role="doctor", memberships__is_active=True)
        .order_by("full_name")
        .values_list("pk", "full_name")
    )
    form = StaffBookingForm(request.POST if request.method == "POST" else None, doctors=doctors)
    slots: list[Slot] = []
    if request.method == "POST" and form.is_valid():
        doctor = User.objects.get(pk=form.cleaned_data["doctor"])
        slots = doctor_free_slots(
            doctor=doctor, clinic=clinic, first_day=form.cleaned_data["day"], days=1, now=timezone.now()
        )
        starts_at = form.cleaned_data["starts_at"]
        if starts_at is not None:
            try:
                patient = _patient_for_staff_booking(request, form)
                appointment_book(
                    patient=patient,
                    doctor=doctor,
                    clinic=clinic,
                    starts_at=starts_at,
                    mode=form.cleaned_data["mode"] or "video",
                    reason=form.cleaned_data["reason"],
                    booked_by=request.user,
                )
            except BookingError as refused:
                form.add_error(None, refused.message)
            except StaffBookingError as refused:
                form.add_error(refused.field, refused.message)
            else:
                messages.success(request, _("The appointment is booked; the patient is told by SMS."))
                return redirect("scheduling:clinic_calendar", clinic_id=clinic.pk)
    with timezone.override(clinic_zone(clinic)):
        return render(request, "scheduling/staff_book.html", {"clinic": clinic, "form": form, "slots": slots})


class StaffBookingError(Exception):
    def __init__(self, field: str | None, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(message)


def _patient_for_staff_booking(request: AuthedRequest, form: StaffBookingForm) -> User:
    """The patient with that phone number, or a new one (with the consent
    staff recorded on their behalf)."""
    phone = form.cleaned_data["phone"]
    with transaction.atomic():
        patient = User.objects.filter(phone=phone).first()
        if patient is None:
            if not form.cleaned_data["full_name"]:
                raise StaffBookingError(
                    "full_name", _("No patient has this number: enter their full name to register them.")
                )
            patient = patient_register_by_staff(
                full_name=form.cleaned_data["full_name"],
                phone=phone,
                language=request.user.language,
                registered_by=request.user,
            )
        elif not hasattr(patient, "patient_profile"):
            raise StaffBookingError("phone", _("This number belongs to a staff account, not a patient."))
        audit_record(
            action=AuditAction.VIEW,
            actor=request.user,
            object_type="patient",
            object_id=patient.pk,
            patient=patient,
            reason="looked up to book an appointment",
        )
        if not consent_is_current(patient=patient):
            if not form.cleaned_data["consent"]:
                raise StaffBookingError("consent", _("The patient's consent is needed before booking."))
            consent_give(patient=patient, given_by=request.user)
    return patient
