"""Booking, rescheduling and cancelling appointments.

Every write runs in one transaction. On PostgreSQL exclusion constraints
make overlapping active appointments impossible whatever the code does; on
SQLite the transaction is IMMEDIATE (settings), so the overlap check and the
insert happen under the database's write lock.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import User
from apps.accounts.selectors import consent_is_current
from apps.audit.models import AuditAction
from apps.audit.services import audit_record
from apps.clinics.models import Clinic
from apps.scheduling.models import HOLDING_STATUSES, Appointment, AppointmentStatus
from apps.scheduling.notices import notify_booked, notify_cancelled, notify_rescheduled
from apps.scheduling.selectors import (
    clinic_policy,
    clinic_zone,
    doctor_practises_at,
    policy_spec,
    rule_specs,
    time_off_intervals,
)
from apps.scheduling.slots import compute_slots


class Refusal(Exception):
    """A change refused for a reason the user can act on: ``code`` for
    programs, ``message`` (translated) for people."""

    MESSAGES: dict[str, Promise] = {}

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(code)

    @property
    def message(self) -> str:
        return str(self.MESSAGES[self.code])


class AppointmentChangeError(Refusal):
    MESSAGES: dict[str, Promise] = {
        "not_active": _("This appointment is no longer booked."),
        "past_cutoff": _("It is too late to change this appointment online. Please call the clinic."),
        "reason_needed": _("Staff must give a reason to change an appointment after the cutoff."),
        "not_started": _("An appointment can be marked only once its time has come."),
        "bad_status": _("An appointment can be marked completed or as a no-show only."),
    }


class BookingError(Refusal):
    """A booking refused: the slot, the policy or the patient."""

    MESSAGES: dict[str, Promise] = {
        "no_consent": _("The patient has not given consent to the processing of health data."),
        "not_a_patient": _("Only patients can have appointments."),
        "not_here": _("This doctor does not consult at this clinic."),
        "in_past": _("This time has already passed."),
        "too_soon": _("This time is too soon: the clinic needs more notice."),
        "too_far": _("This time is too far ahead to book yet."),
        "not_offered": _("The doctor does not offer this time."),
        "mode_not_offered": _("The doctor does not offer this way to consult at this time."),
        "slot_taken": _("This time was just booked by someone else. Please choose another."),
        "patient_busy": _("The patient already has an appointment at this time."),
    }


def _check_policy(*, clinic: Clinic, starts_at: datetime, now: datetime) -> None:
    policy = policy_spec(clinic_policy(clinic=clinic))
    if starts_at <= now:
        raise BookingError("in_past")
    if starts_at < now + policy.min_notice:
        raise BookingError("too_soon")
    if starts_at > now + policy.max_ahead:
        raise BookingError("too_far")


def _offered_slot_end(*, doctor: User, clinic: Clinic, starts_at: datetime, mode: str, now: datetime) -> datetime:
    """The end of the offered slot that starts at ``starts_at`` (rules, time
    off and policy; not other appointments, which the overlap check handles)."""
    slots = compute_slots(
        rules=rule_specs(doctor=doctor, clinic=clinic),
        zone=clinic_zone(clinic),
        window_start=starts_at,
        window_end=starts_at + timedelta(minutes=1),
        now=now,
        policy=policy_spec(clinic_policy(clinic=clinic)),
        time_off=time_off_intervals(doctor=doctor, start=starts_at, end=starts_at + timedelta(days=1)),
    )
    slot = next((s for s in slots if s.start == starts_at), None)
    if slot is None:
        raise BookingError("not_offered")
    if mode not in slot.modes:
        raise BookingError("mode_not_offered")
    return slot.end


def _overlapping(*, start: datetime, end: datetime, exclude_id: int | None = None) -> QuerySet[Appointment]:
    rows = Appointment.objects.filter(status__in=HOLDING_STATUSES, starts_at__lt=end, ends_at__gt=start)
    if exclude_id is not None:
        rows = rows.exclude(pk=exclude_id)
    return rows


def _insert(appointment: Appointment, *, exclude_id: int | None = None) -> None:
    """Check for overlaps and insert, inside the caller's transaction."""
    overlapping = _overlapping(start=appointment.starts_at, end=appointment.ends_at, exclude_id=exclude_id)
    if overlapping.filter(doctor=appointment.doctor).exists():
        raise BookingError("slot_taken")
    if overlapping.filter(patient=appointment.patient).exists():
        raise BookingError("patient_busy")
    try:
        with transaction.atomic():
            appointment.save()
    except IntegrityError as exc:  # PostgreSQL's exclusion constraints: a concurrent booking won
        raise BookingError("patient_busy" if "patient_no_overlap" in str(exc) else "slot_taken") from exc


def appointment_book(
    *,
    patient: User,
    doctor: User,
    clinic: Clinic,
    starts_at: datetime,
    mode: str,
    reason: str = "",
    booked_by: User,
    now: datetime | None = None,
) -> Appointment:
    now = now or timezone.now()
    if not hasattr(patient, "patient_profile"):
        raise BookingError("not_a_patient")
    if not consent_is_current(patient=patient):
        raise BookingError("no_consent")
    if not doctor_practises_at(doctor=doctor, clinic=clinic):
        raise BookingError("not_here")
    _check_policy(clinic=clinic, starts_at=starts_at, now=now)
    ends_at = _offered_slot_end(doctor=doctor, clinic=clinic, starts_at=starts_at, mode=mode, now=now)
    appointment = Appointment(
        patient=patient,
        doctor=doctor,
        clinic=clinic,
        starts_at=starts_at,
        ends_at=ends_at,
        mode=mode,
        reason=reason.strip()[:500],
        booked_by=booked_by,
    )
    with transaction.atomic():
        _insert(appointment)
        notify_booked(appointment)
        audit_record(
            action=AuditAction.CREATE,
            actor=booked_by,
            object_type="appointment",
            object_id=appointment.pk,
            patient=patient,
            clinic_id=clinic.pk,
        )
    return appointment


def _cutoff_passed(appointment: Appointment, now: datetime) -> bool:
    hours = clinic_policy(clinic=appointment.clinic).cancellation_cutoff_hours
    return now > appointment.starts_at - timedelta(hours=hours)


def _lock_active(appointment: Appointment) -> Appointment:
    locked = Appointment.objects.select_for_update().get(pk=appointment.pk)
    if locked.status != AppointmentStatus.BOOKED:
        raise AppointmentChangeError("not_active")
    return locked


def appointment_cancel(
    *, appointment: Appointment, by: User, reason: str = "", staff: bool = False, now: datetime | None = None
) -> Appointment:
    """Cancel a booked appointment. Patients are bound by the clinic's
    cutoff; staff may cancel later with a reason."""
    now = now or timezone.now()
    reason = reason.strip()[:300]
    with transaction.atomic():
        locked = _lock_active(appointment)
        if _cutoff_passed(locked, now):
            if not staff:
                raise AppointmentChangeError("past_cutoff")
            if not reason:
                raise AppointmentChangeError("reason_needed")
        locked.status = AppointmentStatus.CANCELLED
        locked.cancelled_at = now
        locked.cancelled_by = by
        locked.cancel_reason = reason
        locked.save(update_fields=["status", "cancelled_at", "cancelled_by", "cancel_reason", "updated_at"])
        notify_cancelled(locked)
        audit_record(
            action=AuditAction.UPDATE,
            actor=by,
            object_type="appointment",
            object_id=locked.pk,
            patient=locked.patient,
            clinic_id=locked.clinic_id,
            reason=f"cancelled: {reason}"[:500],
        )
    return locked


def appointment_reschedule(
    *,
    appointment: Appointment,
    starts_at: datetime,
    by: User,
    mode: str | None = None,
    reason: str = "",
    staff: bool = False,
    now: datetime | None = None,
) -> Appointment:
    """Move an appointment in one step: the new one is booked and the old one
    cancelled together, or nothing changes."""
    now = now or timezone.now()
    mode = mode or appointment.mode
    reason = reason.strip()[:300]
    _check_policy(clinic=appointment.clinic, starts_at=starts_at, now=now)
    ends_at = _offered_slot_end(
        doctor=appointment.doctor, clinic=appointment.clinic, starts_at=starts_at, mode=mode, now=now
    )
    with transaction.atomic():
        old = _lock_active(appointment)
        if _cutoff_passed(old, now):
            if not staff:
                raise AppointmentChangeError("past_cutoff")
            if not reason:
                raise AppointmentChangeError("reason_needed")
        # Free the old time first: the new one may overlap it (same doctor,
        # a little later), and the database checks each statement.
        old.status = AppointmentStatus.CANCELLED
        old.cancelled_at = now
        old.cancelled_by = by
        old.cancel_reason = reason or "rescheduled"
        old.save(update_fields=["status", "cancelled_at", "cancelled_by", "cancel_reason", "updated_at"])
        new = Appointment(
            patient=old.patient,
            doctor=old.doctor,
            clinic=old.clinic,
            starts_at=starts_at,
            ends_at=ends_at,
            mode=mode,
            reason=old.reason,
            booked_by=by,
            rescheduled_from=old,
        )
        _insert(new)
        notify_rescheduled(old, new)
        audit_record(
            action=AuditAction.UPDATE,
            actor=by,
            object_type="appointment",
            object_id=new.pk,
            patient=new.patient,
            clinic_id=new.clinic_id,
            reason=f"rescheduled from {old.pk}",
        )
    return new


def appointment_mark(*, appointment: Appointment, status: str, by: User, now: datetime | None = None) -> Appointment:
    """Staff record how an appointment went: completed or no-show."""
    now = now or timezone.now()
    if status not in (AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW):
        raise AppointmentChangeError("bad_status")
    with transaction.atomic():
        locked = _lock_active(appointment)
        if now < locked.starts_at:
            raise AppointmentChangeError("not_started")
        locked.status = status
        fields = ["status", "updated_at"]
        if status == AppointmentStatus.COMPLETED:
            locked.completed_at = now
            fields.append("completed_at")
        locked.save(update_fields=fields)
        audit_record(
            action=AuditAction.UPDATE,
            actor=by,
            object_type="appointment",
            object_id=locked.pk,
            patient=locked.patient,
            clinic_id=locked.clinic_id,
            reason=status,
        )
    return locked
