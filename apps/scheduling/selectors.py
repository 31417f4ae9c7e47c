"""Reads of schedules: the inputs of slot computation, and free slots."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, time, timedelta

from django.db.models import Q, QuerySet
from django.http import Http404

from apps.accounts.models import User
from apps.clinics.models import Clinic, Membership, Role
from apps.scheduling.models import (
    DEFAULT_REMINDER_OFFSETS_MINUTES,
    HOLDING_STATUSES,
    Appointment,
    AvailabilityRule,
    BookingPolicy,
    TimeOff,
)
from apps.scheduling.slots import Interval, PolicySpec, RuleSpec, Slot, compute_slots


def clinic_zone(clinic: Clinic) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(clinic.timezone)


def clinic_policy(*, clinic: Clinic) -> BookingPolicy:
    """The clinic's booking policy (defaults when it has none yet)."""
    policy = BookingPolicy.objects.filter(clinic=clinic).first()
    return policy or BookingPolicy(clinic=clinic, reminder_offsets_minutes=list(DEFAULT_REMINDER_OFFSETS_MINUTES))


def policy_spec(policy: BookingPolicy) -> PolicySpec:
    return PolicySpec(
        min_notice=timedelta(minutes=policy.min_notice_minutes), max_ahead=timedelta(days=policy.max_ahead_days)
    )


def rule_specs(*, doctor: User, clinic: Clinic) -> list[RuleSpec]:
    return [
        RuleSpec(
            weekdays=frozenset(rule.weekdays),
            start=rule.start_time,
            end=rule.end_time,
            slot_minutes=rule.slot_minutes,
            buffer_minutes=rule.buffer_minutes,
            modes=frozenset(rule.modes),
            valid_from=rule.valid_from,
            valid_until=rule.valid_until,
        )
        for rule in AvailabilityRule.objects.filter(doctor=doctor, clinic=clinic)
    ]


def doctor_practises_at(*, doctor: User, clinic: Clinic) -> bool:
    return Membership.objects.filter(
        user=doctor, clinic=clinic, role=Role.DOCTOR, is_active=True, clinic__is_active=True
    ).exists()


def busy_intervals(*, doctor: User, start: datetime, end: datetime, exclude_id: int | None = None) -> list[Interval]:
    appointments = Appointment.objects.filter(
        doctor=doctor, status__in=HOLDING_STATUSES, starts_at__lt=end, ends_at__gt=start
    )
    if exclude_id is not None:
        appointments = appointments.exclude(pk=exclude_id)
    return [Interval(a.starts_at, a.ends_at) for a in appointments.only("starts_at", "ends_at")]


def time_off_intervals(*, doctor: User, start: datetime, end: datetime) -> list[Interval]:
    return [
        Interval(t.starts_at, t.ends_at)
        for t in TimeOff.objects.filter(doctor=doctor, starts_at__lt=end, ends_at__gt=start).only(
            "starts_at", "ends_at"
        )
    ]


def doctor_free_slots(*, doctor: User, clinic: Clinic, first_day: date, days: int, now: datetime) -> list[Slot]:
    """The slots a patient can book with ``doctor`` at ``clinic`` over
    ``days`` local days from ``first_day`` (clinic time)."""
    zone = clinic_zone(clinic)
    start = datetime.combine(first_day, time(0), tzinfo=zone)
    end = datetime.combine(first_day + timedelta(days=days), time(0), tzinfo=zone)
    return compute_slots(
        rules=rule_specs(doctor=doctor, clinic=clinic),
        zone=zone,
        window_start=start,
        window_end=end,
        now=now,
        policy=policy_spec(clinic_policy(clinic=clinic)),
        time_off=time_off_intervals(doctor=doctor, start=start, end=end),
        busy=busy_intervals(doctor=doctor, start=start, end=end),
    )


def appointments_visible_to(*, user: User) -> QuerySet[Appointment]:
    """Appointments ``user`` may see: their own as patient or doctor, and
    those of the clinics they administer."""
    from apps.clinics.models import Role

    admin_clinics = Membership.objects.filter(user=user, role=Role.ADMIN, is_active=True).values("clinic_id")
    return Appointment.objects.filter(Q(patient=user) | Q(doctor=user) | Q(clinic_id__in=admin_clinics)).select_related(
        "patient", "doctor", "clinic"
    )


def appointment_get_for_user(*, user: User, appointment_id: int) -> Appointment:
    """The appointment, or "not found" for anyone who may not see it."""
    appointment = appointments_visible_to(user=user).filter(pk=appointment_id).first()
    if appointment is None:
        raise Http404
    return appointment


def patient_appointments(*, patient: User, now: datetime) -> tuple[list[Appointment], list[Appointment]]:
    """A patient's upcoming and past appointments (cancelled ones among the past)."""
    rows = list(Appointment.objects.filter(patient=patient).select_related("doctor", "clinic").order_by("starts_at"))
    upcoming = [a for a in rows if a.ends_at > now and a.status == "booked"]
    past = [a for a in rows if a not in upcoming]
    past.reverse()
    return upcoming, past


def clinic_calendar(*, clinic: Clinic, start: datetime, end: datetime) -> list[Appointment]:
    """A clinic's appointments (all doctors) between two instants, for its admins."""
    return list(
        Appointment.objects.filter(clinic=clinic, starts_at__lt=end, ends_at__gt=start)
        .select_related("patient", "doctor")
        .order_by("starts_at", "doctor__full_name")
    )


def doctor_calendar(*, doctor: User, start: datetime, end: datetime) -> list[Appointment]:
    return list(
        Appointment.objects.filter(doctor=doctor, starts_at__lt=end, ends_at__gt=start)
        .select_related("patient", "clinic")
        .order_by("starts_at")
    )
