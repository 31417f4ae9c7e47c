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
from apps.scheduling.models import HOLDING_STATUSES, Appointment
from apps.scheduling.selectors import (
    clinic_policy,
    clinic_zone,
    doctor_practises_at,
    policy_spec,
    rule_specs,
    time_off_intervals,
)
from apps.scheduling.slots import compute_slots


class BookingError(Exception):
    """A booking refused for a reason the user can act on."""

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

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(code)

    @property
    def message(self) -> str:
        return str(self.MESSAGES[self.code])


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
        audit_record(
            action=AuditAction.CREATE,
            actor=booked_by,
            object_type="appointment",
            object_id=appointment.pk,
            patient=patient,
            clinic_id=clinic.pk,
        )
    return appointment
