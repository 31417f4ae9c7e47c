"""Booking, rescheduling and cancelling appointments.

Every write runs in one transaction. On PostgreSQL exclusion constraints
make overlapping active appointments impossible whatever the code does; on
SQLite the transaction is IMMEDIATE (settings), so the overlap check and the
insert happen under the database's write lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from functools import partial

from django.core.exceptions import ValidationError
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import User
from apps.accounts.selectors import consent_is_current
from apps.audit.models import AuditAction
from apps.audit.services import audit_record
from apps.clinics.models import Clinic, Membership, Role
from apps.clinics.selectors import user_is_patient
from apps.scheduling.labels import rule_hours_label, rule_validity_label
from apps.scheduling.models import (
    HOLDING_STATUSES,
    Appointment,
    AppointmentStatus,
    AvailabilityRule,
    BookingPolicy,
    ConsultMode,
    TimeOff,
)
from apps.scheduling.notices import notify_booked, notify_cancelled, notify_rescheduled
from apps.scheduling.selectors import (
    BOOKING_TIME_OFF_WINDOW,
    BookingInputs,
    availability_rule_overlapping,
    booking_inputs,
    clinic_policy,
    clinic_zone,
    doctor_rule_specs_if_practising,
    policy_spec,
    rule_specs,
    time_off_intervals,
)
from apps.scheduling.slots import Interval, PolicySpec, RuleSpec, compute_slots

logger = logging.getLogger(__name__)


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


def _check_policy(*, policy: PolicySpec, starts_at: datetime, now: datetime) -> None:
    if starts_at <= now:
        raise BookingError("in_past")
    if starts_at < now + policy.min_notice:
        raise BookingError("too_soon")
    if starts_at > now + policy.max_ahead:
        raise BookingError("too_far")


def _offered_slot_end(
    *,
    doctor: User,
    clinic: Clinic,
    rules: list[RuleSpec],
    policy: PolicySpec,
    starts_at: datetime,
    mode: str,
    now: datetime,
    time_off: list[Interval] | None = None,
) -> datetime:
    """The end of the offered slot that starts at ``starts_at`` (the doctor's
    ``rules`` at ``clinic``, time off and policy; not other appointments,
    which the overlap check handles). ``time_off``: the doctor's from
    ``starts_at`` for ``BOOKING_TIME_OFF_WINDOW``, when the caller has it."""
    if time_off is None:
        time_off = time_off_intervals(doctor=doctor, start=starts_at, end=starts_at + BOOKING_TIME_OFF_WINDOW)
    slots = compute_slots(
        rules=rules,
        zone=clinic_zone(clinic),
        window_start=starts_at,
        window_end=starts_at + timedelta(minutes=1),
        now=now,
        policy=policy,
        time_off=time_off,
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


# A deadlock between two transactions on PostgreSQL: SQLSTATE 40P01.
DEADLOCK_DETECTED = "40P01"
DEADLOCK_RETRIES = 2


def _in_transaction_retrying_deadlocks(work: Callable[[], Appointment]) -> Appointment:
    """``work()`` in a transaction. Two overlapping inserts at the same moment
    each wait for the other's row on PostgreSQL's exclusion constraints, and
    the database aborts one of them as deadlocked; that one runs again, meets
    the winner's row and is refused with the right reason (or books, if the
    winner rolled back)."""
    for attempt in range(DEADLOCK_RETRIES + 1):
        try:
            with transaction.atomic():
                return work()
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != DEADLOCK_DETECTED or attempt == DEADLOCK_RETRIES:
                raise
    raise AssertionError("unreachable")


def _insert(appointment: Appointment, *, exclude_id: int | None = None) -> None:
    """Insert, refusing an overlap with the doctor's or the patient's active
    appointments, inside the caller's transaction (which a refusal rolls
    back: it leaves the block as an exception). On PostgreSQL the insert
    alone: the exclusion constraints refuse an overlap, committed or not,
    and name the reason (the doctor's is checked first, as below). Elsewhere
    a query checks first, under the immediate transaction's write lock."""
    if connection.vendor != "postgresql":
        _refuse_overlaps(appointment, exclude_id=exclude_id)
    try:
        appointment.save()
    except IntegrityError as exc:  # PostgreSQL's exclusion constraints: a concurrent booking won
        raise BookingError("patient_busy" if "patient_no_overlap" in str(exc) else "slot_taken") from exc


def _refuse_overlaps(appointment: Appointment, *, exclude_id: int | None) -> None:
    overlapping = _overlapping(start=appointment.starts_at, end=appointment.ends_at, exclude_id=exclude_id)
    doctors = set(
        overlapping.filter(Q(doctor=appointment.doctor) | Q(patient=appointment.patient)).values_list(
            "doctor_id", flat=True
        )
    )
    if appointment.doctor_id in doctors:
        raise BookingError("slot_taken")
    if doctors:
        raise BookingError("patient_busy")


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
    inputs: BookingInputs | None = None,
) -> Appointment:
    """Book ``starts_at`` with ``doctor`` at ``clinic`` for ``patient``, or
    refuse with a ``BookingError``. ``inputs``: ``booking_inputs`` for this
    very booking, when the caller read them already (the API does, to find
    the doctor and the clinic in the same statement)."""
    now = now or timezone.now()
    if not user_is_patient(user=patient):
        raise BookingError("not_a_patient")
    if inputs is None:
        inputs = booking_inputs(
            doctor_id=doctor.pk, clinic_id=clinic.pk, patient=patient, booker=booked_by, starts_at=starts_at
        )
    elif (inputs.doctor.pk, inputs.clinic.pk, inputs.patient_id, inputs.starts_at) != (
        doctor.pk,
        clinic.pk,
        patient.pk,
        starts_at,
    ):
        raise ValueError("booking inputs read for another booking")
    if inputs is None:  # no hours at this clinic, a closed clinic, not a doctor: one read at a time
        if not consent_is_current(patient=patient):
            raise BookingError("no_consent")
        rules = doctor_rule_specs_if_practising(doctor=doctor, clinic=clinic)
        if rules is None:
            raise BookingError("not_here")
        policy = policy_spec(clinic_policy(clinic=clinic))
        time_off = None
    else:
        if not inputs.consent:
            raise BookingError("no_consent")
        if inputs.rules is None:
            raise BookingError("not_here")
        rules, policy, time_off = inputs.rules, policy_spec(inputs.policy), inputs.time_off
    _check_policy(policy=policy, starts_at=starts_at, now=now)
    ends_at = _offered_slot_end(
        doctor=doctor,
        clinic=clinic,
        rules=rules,
        policy=policy,
        starts_at=starts_at,
        mode=mode,
        now=now,
        time_off=time_off,
    )

    def book() -> Appointment:
        appointment = Appointment(
            patient=patient,
            doctor=doctor,
            clinic=clinic,
            starts_at=starts_at,
            ends_at=ends_at,
            mode=mode,
            reason=reason.strip()[:500],
            booked_by=booked_by,
            notices_pending=True,
        )
        _insert(appointment)
        transaction.on_commit(partial(_notices_enqueue, appointment.pk))
        audit_record(
            action=AuditAction.CREATE,
            actor=booked_by,
            object_type="appointment",
            object_id=appointment.pk,
            patient=patient,
            clinic_id=clinic.pk,
        )
        return appointment

    return _in_transaction_retrying_deadlocks(book)


# A booking's notices are written by the worker right after it commits; one
# still pending after this long lost its broker message and beat's scan
# writes it.
NOTICES_LATE_AFTER = timedelta(seconds=30)


def _notices_enqueue(appointment_id: int) -> None:
    from apps.scheduling.tasks import appointment_notices_send_task

    try:
        appointment_notices_send_task.delay(appointment_id)
    except Exception:  # the broker is down: beat's scan will find the booking
        logger.warning("could not enqueue the notices of appointment %s; the periodic scan will", appointment_id)


def appointment_notices_send(*, appointment_id: int) -> bool:
    """Write a booking's notices (see ``notify_booked``) once: False when
    they were written already. An appointment cancelled or moved before its
    notices went out gets none (its cancellation or move says enough)."""
    with transaction.atomic():
        appointment = (
            Appointment.objects.select_for_update(of=("self",))
            .select_related("patient", "doctor", "clinic")
            .filter(pk=appointment_id, notices_pending=True)
            .first()
        )
        if appointment is None:
            return False
        if appointment.status == AppointmentStatus.BOOKED:
            notify_booked(appointment)
        appointment.notices_pending = False
        appointment.save(update_fields=["notices_pending"])
    return True


def appointment_notices_send_late(*, now: datetime | None = None) -> int:
    """Beat's scan: the notices of bookings whose message to the worker was
    lost. Returns how many bookings it wrote notices for."""
    now = now or timezone.now()
    late = Appointment.objects.filter(notices_pending=True, created_at__lt=now - NOTICES_LATE_AFTER)
    return sum(appointment_notices_send(appointment_id=pk) for pk in late.values_list("pk", flat=True)[:500])


def _cutoff_passed(appointment: Appointment, now: datetime, policy: BookingPolicy | None = None) -> bool:
    hours = (policy or clinic_policy(clinic=appointment.clinic)).cancellation_cutoff_hours
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
    booking_policy = clinic_policy(clinic=appointment.clinic)
    policy = policy_spec(booking_policy)
    _check_policy(policy=policy, starts_at=starts_at, now=now)
    ends_at = _offered_slot_end(
        doctor=appointment.doctor,
        clinic=appointment.clinic,
        rules=rule_specs(doctor=appointment.doctor, clinic=appointment.clinic),
        policy=policy,
        starts_at=starts_at,
        mode=mode,
        now=now,
    )

    def move() -> Appointment:
        old = _lock_active(appointment)
        if _cutoff_passed(old, now, booking_policy):
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
        notify_rescheduled(old, new, policy=booking_policy)
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

    return _in_transaction_retrying_deadlocks(move)


def appointment_mark(
    *, appointment: Appointment, status: str, by: User, now: datetime | None = None, duration_s: int | None = None
) -> Appointment:
    """Staff record how an appointment went: completed or no-show. A consult
    that was held passes its ``duration_s``; it may end before the booked
    start, as its room opens early."""
    now = now or timezone.now()
    if status not in (AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW):
        raise AppointmentChangeError("bad_status")
    if duration_s is not None and (status != AppointmentStatus.COMPLETED or duration_s < 0):
        raise AppointmentChangeError("bad_status")
    with transaction.atomic():
        locked = _lock_active(appointment)
        if now < locked.starts_at and duration_s is None:
            raise AppointmentChangeError("not_started")
        locked.status = status
        fields = ["status", "updated_at"]
        if status == AppointmentStatus.COMPLETED:
            locked.completed_at = now
            fields.append("completed_at")
            if duration_s is not None:
                locked.duration_s = duration_s
                fields.append("duration_s")
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


# Doctors' hours, time off and the clinic's booking policy, set by its admins.


class HoursError(Refusal):
    """A change of hours, time off or booking policy refused."""

    MESSAGES: dict[str, Promise] = {
        "not_here": _("This doctor does not consult at this clinic."),
        "invalid": _("These hours are not valid: check the days, times, slot length and dates."),
        "overlap": _(
            "These hours overlap the doctor's hours %(hours)s (%(validity)s) at this clinic. "
            "Change or delete those first, or choose other days, times or dates."
        ),
        "time_off_order": _("The time off must end after it starts."),
        "time_off_over": _("This time off is already over."),
        "policy_invalid": _("This booking policy is not valid: check each number."),
    }

    def __init__(self, code: str, *, overlapping: AvailabilityRule | None = None) -> None:
        super().__init__(code)
        self.overlapping = overlapping

    @property
    def message(self) -> str:
        text = str(self.MESSAGES[self.code])
        if self.overlapping is not None:
            text %= {"hours": rule_hours_label(self.overlapping), "validity": rule_validity_label(self.overlapping)}
        return text


MAX_REMINDERS = 5
MAX_REMINDER_OFFSET_MINUTES = 14 * 24 * 60


def _lock_practice(*, doctor: User, clinic: Clinic) -> None:
    """Lock the doctor's membership of the clinic, so that two admins'
    changes to the doctor's hours there happen one after the other; refuse a
    doctor who doesn't practise there."""
    membership = (
        Membership.objects.select_for_update(of=("self",))
        .filter(user=doctor, clinic=clinic, role=Role.DOCTOR, is_active=True, clinic__is_active=True)
        .first()
    )
    if membership is None:
        raise HoursError("not_here")


def _rule_audit_text(rule: AvailabilityRule) -> str:
    return (
        f"doctor={rule.doctor_id} days={','.join(map(str, rule.weekdays))} "
        f"{rule.start_time:%H:%M}-{rule.end_time:%H:%M} slot={rule.slot_minutes} buffer={rule.buffer_minutes} "
        f"modes={','.join(rule.modes)} from={rule.valid_from or '-'} until={rule.valid_until or '-'}"
    )


def _rule_set(
    rule: AvailabilityRule,
    *,
    weekdays: list[int],
    start_time: time,
    end_time: time,
    slot_minutes: int,
    buffer_minutes: int,
    modes: list[str],
    valid_from: date | None,
    valid_until: date | None,
) -> None:
    """Set and check the rule's hours, inside the caller's transaction."""
    rule.weekdays = sorted(set(weekdays))
    rule.start_time = start_time
    rule.end_time = end_time
    rule.slot_minutes = slot_minutes
    rule.buffer_minutes = buffer_minutes
    rule.modes = [mode for mode in ConsultMode.values if mode in set(modes)]
    rule.valid_from = valid_from
    rule.valid_until = valid_until
    try:
        rule.full_clean()
    except ValidationError as exc:
        raise HoursError("invalid") from exc
    overlapping = availability_rule_overlapping(
        doctor=rule.doctor,
        clinic=rule.clinic,
        weekdays=rule.weekdays,
        start_time=start_time,
        end_time=end_time,
        valid_from=valid_from,
        valid_until=valid_until,
        exclude_id=rule.pk,
    )
    if overlapping is not None:
        raise HoursError("overlap", overlapping=overlapping)


def availability_rule_create(
    *,
    doctor: User,
    clinic: Clinic,
    weekdays: list[int],
    start_time: time,
    end_time: time,
    slot_minutes: int,
    buffer_minutes: int = 0,
    modes: list[str],
    valid_from: date | None = None,
    valid_until: date | None = None,
    by: User,
) -> AvailabilityRule:
    """Add weekly hours for a doctor at a clinic (clinic-local times). Hours
    overlapping another of the doctor's rules there are refused."""
    with transaction.atomic():
        _lock_practice(doctor=doctor, clinic=clinic)
        rule = AvailabilityRule(doctor=doctor, clinic=clinic)
        _rule_set(
            rule,
            weekdays=weekdays,
            start_time=start_time,
            end_time=end_time,
            slot_minutes=slot_minutes,
            buffer_minutes=buffer_minutes,
            modes=modes,
            valid_from=valid_from,
            valid_until=valid_until,
        )
        rule.save()
        audit_record(
            action=AuditAction.CREATE,
            actor=by,
            object_type="availability_rule",
            object_id=rule.pk,
            clinic_id=clinic.pk,
            reason=_rule_audit_text(rule),
        )
    return rule


def availability_rule_update(
    *,
    rule: AvailabilityRule,
    weekdays: list[int],
    start_time: time,
    end_time: time,
    slot_minutes: int,
    buffer_minutes: int = 0,
    modes: list[str],
    valid_from: date | None = None,
    valid_until: date | None = None,
    by: User,
) -> AvailabilityRule:
    """Change a rule's hours. Booked appointments stay booked, even those the
    new hours no longer hold (``appointments_outside_hours`` lists them)."""
    with transaction.atomic():
        _lock_practice(doctor=rule.doctor, clinic=rule.clinic)
        locked = AvailabilityRule.objects.select_for_update().select_related("doctor", "clinic").get(pk=rule.pk)
        _rule_set(
            locked,
            weekdays=weekdays,
            start_time=start_time,
            end_time=end_time,
            slot_minutes=slot_minutes,
            buffer_minutes=buffer_minutes,
            modes=modes,
            valid_from=valid_from,
            valid_until=valid_until,
        )
        locked.save()
        audit_record(
            action=AuditAction.UPDATE,
            actor=by,
            object_type="availability_rule",
            object_id=locked.pk,
            clinic_id=locked.clinic_id,
            reason=_rule_audit_text(locked),
        )
    return locked


def availability_rule_delete(*, rule: AvailabilityRule, by: User) -> None:
    """Delete a rule. Booked appointments in its hours stay booked."""
    with transaction.atomic():
        _lock_practice(doctor=rule.doctor, clinic=rule.clinic)
        text = _rule_audit_text(rule)
        rule_id = rule.pk
        AvailabilityRule.objects.filter(pk=rule_id).delete()
        audit_record(
            action=AuditAction.DELETE,
            actor=by,
            object_type="availability_rule",
            object_id=rule_id,
            clinic_id=rule.clinic_id,
            reason=text,
        )


def time_off_create(
    *,
    doctor: User,
    clinic: Clinic,
    starts_at: datetime,
    ends_at: datetime,
    reason: str = "",
    by: User,
    now: datetime | None = None,
) -> TimeOff:
    """Time off for a doctor (at every clinic where they practise), added by
    an admin of ``clinic``. Booked appointments in that time stay booked."""
    now = now or timezone.now()
    if ends_at <= starts_at:
        raise HoursError("time_off_order")
    if ends_at <= now:
        raise HoursError("time_off_over")
    with transaction.atomic():
        _lock_practice(doctor=doctor, clinic=clinic)
        time_off = TimeOff.objects.create(
            doctor=doctor, starts_at=starts_at, ends_at=ends_at, reason=reason.strip()[:200], created_by=by
        )
        # The reason may say why the doctor is away: it stays out of the log.
        audit_record(
            action=AuditAction.CREATE,
            actor=by,
            object_type="time_off",
            object_id=time_off.pk,
            clinic_id=clinic.pk,
            reason=f"doctor={doctor.pk} {starts_at.isoformat()}/{ends_at.isoformat()}",
        )
    return time_off


def time_off_delete(*, time_off: TimeOff, clinic: Clinic, by: User) -> None:
    """Delete time off, as an admin of a clinic where the doctor practises."""
    with transaction.atomic():
        _lock_practice(doctor=time_off.doctor, clinic=clinic)
        time_off_id = time_off.pk
        TimeOff.objects.filter(pk=time_off_id).delete()
        audit_record(
            action=AuditAction.DELETE,
            actor=by,
            object_type="time_off",
            object_id=time_off_id,
            clinic_id=clinic.pk,
            reason=f"doctor={time_off.doctor_id} {time_off.starts_at.isoformat()}/{time_off.ends_at.isoformat()}",
        )


def booking_policy_update(
    *,
    clinic: Clinic,
    min_notice_minutes: int,
    max_ahead_days: int,
    cancellation_cutoff_hours: int,
    reminder_offsets_minutes: list[int],
    by: User,
) -> BookingPolicy:
    """Set the clinic's booking policy. It applies to bookings, changes and
    cancellations from now on; reminders already planned keep their times."""
    offsets = sorted(set(reminder_offsets_minutes), reverse=True)
    if len(offsets) > MAX_REMINDERS or any(not 0 < m <= MAX_REMINDER_OFFSET_MINUTES for m in offsets):
        raise HoursError("policy_invalid")
    with transaction.atomic():
        policy, created = BookingPolicy.objects.select_for_update().get_or_create(clinic=clinic)
        policy.min_notice_minutes = min_notice_minutes
        policy.max_ahead_days = max_ahead_days
        policy.cancellation_cutoff_hours = cancellation_cutoff_hours
        policy.reminder_offsets_minutes = offsets
        try:
            policy.full_clean()
        except ValidationError as exc:
            raise HoursError("policy_invalid") from exc
        policy.save()
        audit_record(
            action=AuditAction.CREATE if created else AuditAction.UPDATE,
            actor=by,
            object_type="booking_policy",
            object_id=policy.pk,
            clinic_id=clinic.pk,
            reason=(
                f"min_notice_minutes={min_notice_minutes} max_ahead_days={max_ahead_days} "
                f"cancellation_cutoff_hours={cancellation_cutoff_hours} "
                f"reminder_offsets_minutes={','.join(map(str, offsets))}"
            ),
        )
    return policy
