"""Reads of schedules: the inputs of slot computation, and free slots."""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Exists, Model, Q, QuerySet
from django.http import Http404

from apps.accounts.models import ConsentKind, User
from apps.clinics.models import Clinic, DoctorProfile, Membership, Role, Specialty
from apps.clinics.selectors import user_roles_known, user_roles_remember
from apps.scheduling.models import (
    DEFAULT_REMINDER_OFFSETS_MINUTES,
    HOLDING_STATUSES,
    Appointment,
    AppointmentStatus,
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
    return policy or _default_policy(clinic)


def _default_policy(clinic: Clinic) -> BookingPolicy:
    return BookingPolicy(clinic=clinic, reminder_offsets_minutes=list(DEFAULT_REMINDER_OFFSETS_MINUTES))


def policy_spec(policy: BookingPolicy) -> PolicySpec:
    return PolicySpec(
        min_notice=timedelta(minutes=policy.min_notice_minutes), max_ahead=timedelta(days=policy.max_ahead_days)
    )


def rule_specs(*, doctor: User, clinic: Clinic) -> list[RuleSpec]:
    return [_rule_spec(rule) for rule in AvailabilityRule.objects.filter(doctor=doctor, clinic=clinic)]


def _rule_spec(rule: AvailabilityRule) -> RuleSpec:
    return RuleSpec(
        weekdays=frozenset(rule.weekdays),
        start=rule.start_time,
        end=rule.end_time,
        slot_minutes=rule.slot_minutes,
        buffer_minutes=rule.buffer_minutes,
        modes=frozenset(rule.modes),
        valid_from=rule.valid_from,
        valid_until=rule.valid_until,
    )


def doctor_practises_at(*, doctor: User, clinic: Clinic) -> bool:
    return _practice(doctor=doctor, clinic=clinic).exists()


def _practice(*, doctor: User, clinic: Clinic) -> QuerySet[Membership]:
    return Membership.objects.filter(
        user=doctor, clinic=clinic, role=Role.DOCTOR, is_active=True, clinic__is_active=True
    )


def doctor_rule_specs_if_practising(*, doctor: User, clinic: Clinic) -> list[RuleSpec] | None:
    """The doctor's weekly hours at ``clinic``, or None when they don't
    practise there: one query when they have hours there, two when not."""
    rules = list(
        AvailabilityRule.objects.filter(doctor=doctor, clinic=clinic).annotate(
            practises=Exists(_practice(doctor=doctor, clinic=clinic))
        )
    )
    if not rules:
        return [] if doctor_practises_at(doctor=doctor, clinic=clinic) else None
    if not rules[0].practises:
        return None
    return [_rule_spec(rule) for rule in rules]


@dataclass(frozen=True)
class BookingInputs:
    """What a booking checks before its transaction, read in one statement
    (``booking_inputs``): the doctor and the clinic, the doctor's hours
    there (None: they don't practise there), the clinic's policy, whether
    the patient's health-data consent is current, and the doctor's time off
    around the time asked for."""

    doctor: User
    clinic: Clinic
    patient_id: int
    starts_at: datetime
    rules: list[RuleSpec] | None
    policy: BookingPolicy
    consent: bool
    time_off: list[Interval]


# The time off a booking looks at: from the start asked for, one day on
# (longer than any slot).
BOOKING_TIME_OFF_WINDOW = timedelta(days=1)


def booking_inputs(
    *, doctor_id: int, clinic_id: int, patient: User, booker: User, starts_at: datetime
) -> BookingInputs | None:
    """The reads of ``appointment_book`` in one statement: the doctor's hours
    at an active clinic with the doctor, the clinic and its policy, whether
    the doctor practises there (``doctor_practises_at``), whether the
    patient's consent is current (``consent_is_current``), whether any time
    off touches the day from ``starts_at`` (its intervals are read only
    then), and the booker's memberships (``user_roles``, for the audit
    event) unless known already.

    None when the doctor has no hours at the clinic, the clinic is closed or
    the user is no doctor: callers then read those one by one, to refuse
    with the right reason.

    Hand-written SQL: booking is the hot write path, and the ORM took longer
    to build this statement, with its five subqueries, than the database
    took to answer it. The columns come from the models and the values go
    through the ORM's own converters, so the instances are the ORM's."""
    read = _booking_read()
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            read.sql,
            [
                Role.DOCTOR,
                patient.pk,
                ConsentKind.HEALTH_DATA,
                settings.HEALTH_DATA_CONSENT_VERSION,
                adapt(starts_at + BOOKING_TIME_OFF_WINDOW),
                adapt(starts_at),
                booker.pk,
                Role.DOCTOR,
                booker.pk,
                Role.DOCTOR,
                doctor_id,
                clinic_id,
            ],
        )
        rows = cursor.fetchall()
    if not rows:
        return None
    first = rows[0]
    practises, consent, time_off, member_doctor, member_clinic_admin = (bool(flag) for flag in first[-5:])
    if not user_roles_known(user=booker):
        user_roles_remember(user=booker, doctor=member_doctor, clinic_admin=member_clinic_admin)
    doctor = read.doctor.instance(first)
    clinic = read.clinic.instance(first)
    policy = read.policy.instance(first) if first[read.policy.start] is not None else _default_policy(clinic)
    return BookingInputs(
        doctor=doctor,
        clinic=clinic,
        patient_id=patient.pk,
        starts_at=starts_at,
        rules=[_rule_spec(read.rule.instance(row)) for row in rows] if practises else None,
        policy=policy,
        consent=consent,
        time_off=(
            time_off_intervals(doctor=doctor, start=starts_at, end=starts_at + BOOKING_TIME_OFF_WINDOW)
            if time_off
            else []
        ),
    )


class _Columns:
    """A model's columns in a hand-written SELECT (from position ``start`` of
    its rows), and the model instance they make, through the converters the
    ORM would apply."""

    def __init__(self, model: type[Model], alias: str, start: int) -> None:
        fields = model._meta.concrete_fields
        self.model = model
        self.start = start
        self.end = start + len(fields)
        self.attnames = [field.attname for field in fields]
        self.sql = ", ".join(f"{alias}.{connection.ops.quote_name(str(field.column))}" for field in fields)
        self.converters: list[tuple[int, Any, list[Any]]] = []
        for index, field in enumerate(fields):
            column = field.get_col(alias)
            converters = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
            if converters:
                self.converters.append((index, column, converters))

    def instance(self, row: Sequence[Any]) -> Any:
        values = list(row[self.start : self.end])
        for index, column, converters in self.converters:
            for converter in converters:
                values[index] = converter(values[index], column, connection)
        return self.model.from_db(connection.alias, self.attnames, values)


@dataclass(frozen=True)
class _BookingRead:
    sql: str
    rule: _Columns
    doctor: _Columns
    clinic: _Columns
    policy: _Columns


_booking_reads: dict[str, _BookingRead] = {}


def _booking_read() -> _BookingRead:
    """``booking_inputs``'s statement for this database, built once."""
    read = _booking_reads.get(connection.vendor)
    if read is not None:
        return read
    rule = _Columns(AvailabilityRule, "r", 0)
    doctor = _Columns(User, "u", rule.end)
    clinic = _Columns(Clinic, "c", doctor.end)
    policy = _Columns(BookingPolicy, "p", clinic.end)
    active_membership = (
        "SELECT 1 FROM clinics_membership m JOIN clinics_clinic mc ON mc.id = m.clinic_id"
        " WHERE m.is_active AND mc.is_active"
    )
    sql = f"""
        SELECT {rule.sql}, {doctor.sql}, {clinic.sql}, {policy.sql},
            EXISTS ({active_membership}
                AND m.user_id = r.doctor_id AND m.clinic_id = r.clinic_id AND m.role = %s),
            EXISTS (SELECT 1 FROM accounts_consent k
                WHERE k.patient_id = %s AND k.kind = %s AND k.withdrawn_at IS NULL AND k.version = %s),
            EXISTS (SELECT 1 FROM scheduling_timeoff t
                WHERE t.doctor_id = r.doctor_id AND t.starts_at < %s AND t.ends_at > %s),
            EXISTS ({active_membership} AND m.user_id = %s AND m.role = %s),
            EXISTS ({active_membership} AND m.user_id = %s AND m.role <> %s)
        FROM scheduling_availabilityrule r
        JOIN accounts_user u ON u.id = r.doctor_id
        JOIN clinics_doctorprofile dp ON dp.user_id = u.id
        JOIN clinics_clinic c ON c.id = r.clinic_id
        LEFT JOIN scheduling_bookingpolicy p ON p.clinic_id = c.id
        WHERE r.doctor_id = %s AND r.clinic_id = %s AND c.is_active
        ORDER BY r.start_time, r.id
    """  # noqa: S608  # table and column names from the models, values as parameters
    read = _BookingRead(sql=sql, rule=rule, doctor=doctor, clinic=clinic, policy=policy)
    _booking_reads[connection.vendor] = read
    return read


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
    free = doctors_free_slots(pairs=[(doctor.pk, clinic)], first_day=first_day, days=days, now=now)
    return free[(doctor.pk, clinic.pk)]


FREE_DAY_MAX_AHEAD_DAYS = 365


@dataclass(frozen=True)
class FreeDay:
    """One local day of a doctor's free slots at a clinic, for a page that
    books one of them and steps from day to day."""

    day: date
    previous_day: date | None  # None on today: no earlier day to step to
    next_day: date
    slots: list[Slot]


def doctor_free_day(*, doctor: User, clinic: Clinic, day: date | None, now: datetime) -> FreeDay:
    """``doctor``'s free slots at ``clinic`` on ``day`` (clinic time; today
    when None), the day kept between today and a year ahead."""
    today = now.astimezone(clinic_zone(clinic)).date()
    day = min(max(day or today, today), today + timedelta(days=FREE_DAY_MAX_AHEAD_DAYS))
    return FreeDay(
        day=day,
        previous_day=day - timedelta(days=1) if day > today else None,
        next_day=day + timedelta(days=1),
        slots=doctor_free_slots(doctor=doctor, clinic=clinic, first_day=day, days=1, now=now),
    )


def doctors_free_slots(
    *, pairs: Sequence[tuple[int, Clinic]], days: int, now: datetime, first_day: date | None = None
) -> dict[tuple[int, int], list[Slot]]:
    """The free slots of each (doctor id, clinic) pair over ``days`` local
    days from ``first_day`` in that clinic's zone (from today there when
    None), keyed by (doctor id, clinic id).

    Four queries whatever the number of pairs, rules or appointments (rules,
    policies, time off, appointments), then the pure ``compute_slots`` per
    pair; an empty ``pairs`` costs none.
    """
    inputs = _slot_inputs(pairs=pairs, days=days, now=now, first_day=first_day)
    return {key: pair.slots(pair.start, pair.end, now=now) for key, pair in inputs.items()}


# Earliest free slot: the first two days are computed first, and the rest of
# the window only for pairs with nothing free in them.
EARLIEST_FIRST_DAYS = 2


def doctors_earliest_slots(
    *, pairs: Sequence[tuple[int, Clinic]], days: int, now: datetime
) -> dict[tuple[int, int], Slot | None]:
    """The earliest free slot of each (doctor id, clinic) pair over the next
    ``days`` local days from today in that clinic's zone (None: nothing free),
    keyed by (doctor id, clinic id); the same queries as ``doctors_free_slots``."""
    earliest: dict[tuple[int, int], Slot | None] = {}
    for key, pair in _slot_inputs(pairs=pairs, days=days, now=now, first_day=None).items():
        split = min(pair.end, _local_midnight_after(pair.start, pair.zone, EARLIEST_FIRST_DAYS))
        slots = pair.slots(pair.start, split, now=now) or (
            pair.slots(split, pair.end, now=now) if split < pair.end else []
        )
        earliest[key] = slots[0] if slots else None
    return earliest


def _local_midnight_after(start: datetime, zone: zoneinfo.ZoneInfo, days: int) -> datetime:
    return datetime.combine(start.astimezone(zone).date() + timedelta(days=days), time(0), tzinfo=zone)


@dataclass(frozen=True)
class _PairInputs:
    """What ``compute_slots`` needs for one doctor at one clinic, and the
    window asked for (clinic-local midnights)."""

    rules: list[RuleSpec]
    zone: zoneinfo.ZoneInfo
    start: datetime
    end: datetime
    policy: PolicySpec
    time_off: list[Interval]
    busy: list[Interval]

    def slots(self, window_start: datetime, window_end: datetime, *, now: datetime) -> list[Slot]:
        if not self.rules:
            return []
        return compute_slots(
            rules=self.rules,
            zone=self.zone,
            window_start=window_start,
            window_end=window_end,
            now=now,
            policy=self.policy,
            time_off=self.time_off,
            busy=self.busy,
        )


def _slot_inputs(
    *, pairs: Sequence[tuple[int, Clinic]], days: int, now: datetime, first_day: date | None
) -> dict[tuple[int, int], _PairInputs]:
    """Rules, policy, time off and appointments of every pair, in four queries."""
    windows: dict[tuple[int, int], tuple[Clinic, datetime, datetime]] = {}
    for doctor_id, clinic in pairs:
        zone = clinic_zone(clinic)
        day = first_day or now.astimezone(zone).date()
        start = datetime.combine(day, time(0), tzinfo=zone)
        end = datetime.combine(day + timedelta(days=days), time(0), tzinfo=zone)
        windows[(doctor_id, clinic.pk)] = (clinic, start, end)
    if not windows:
        return {}
    doctor_ids = {doctor_id for doctor_id, _ in windows}
    clinic_ids = {clinic_id for _, clinic_id in windows}
    span_start = min(start for _, start, _ in windows.values())
    span_end = max(end for _, _, end in windows.values())

    rules: dict[tuple[int, int], list[RuleSpec]] = defaultdict(list)
    for rule in AvailabilityRule.objects.filter(doctor_id__in=doctor_ids, clinic_id__in=clinic_ids):
        rules[(rule.doctor_id, rule.clinic_id)].append(_rule_spec(rule))
    policies = {policy.clinic_id: policy for policy in BookingPolicy.objects.filter(clinic_id__in=clinic_ids)}
    time_off = _intervals_by_doctor(
        TimeOff.objects.filter(doctor_id__in=doctor_ids, starts_at__lt=span_end, ends_at__gt=span_start)
    )
    busy = _intervals_by_doctor(
        Appointment.objects.filter(
            doctor_id__in=doctor_ids, status__in=HOLDING_STATUSES, starts_at__lt=span_end, ends_at__gt=span_start
        )
    )
    return {
        (doctor_id, clinic_id): _PairInputs(
            rules=rules[(doctor_id, clinic_id)],
            zone=clinic_zone(clinic),
            start=start,
            end=end,
            policy=policy_spec(policies.get(clinic_id) or _default_policy(clinic)),
            time_off=time_off[doctor_id],
            busy=busy[doctor_id],
        )
        for (doctor_id, clinic_id), (clinic, start, end) in windows.items()
    }


@dataclass(frozen=True)
class DoctorResult:
    """A doctor at one clinic where they practise, with their earliest free
    slot (None: no free time in the window)."""

    profile: DoctorProfile
    clinic: Clinic
    earliest: Slot | None


def doctor_search(
    *, specialty: Specialty | None, clinic: Clinic | None, language: str, days: int, now: datetime
) -> list[DoctorResult]:
    """Doctors of the whole network, once per active clinic they practise at,
    with the earliest free slot of the next ``days`` days (from today in that
    clinic's zone): earliest first, those with no free time last, then by
    name. The same number of queries whatever the number of doctors, rules
    and appointments."""
    practices = (
        Membership.objects.filter(
            role=Role.DOCTOR, is_active=True, clinic__is_active=True, user__doctor_profile__isnull=False
        )
        .select_related("clinic", "user__doctor_profile")
        .prefetch_related("user__doctor_profile__specialties")
        .order_by("user__full_name", "user_id", "clinic__name", "clinic_id")
    )
    if specialty is not None:
        practices = practices.filter(user__doctor_profile__specialties=specialty)
    if clinic is not None:
        practices = practices.filter(clinic=clinic)
    matches = [m for m in practices if not language or language in m.user.doctor_profile.languages]
    earliest = doctors_earliest_slots(pairs=[(m.user_id, m.clinic) for m in matches], days=days, now=now)
    results = [DoctorResult(m.user.doctor_profile, m.clinic, earliest[(m.user_id, m.clinic_id)]) for m in matches]
    # sorted() is stable: doctors with the same earliest time stay in name order.
    return sorted(results, key=lambda r: (r.earliest is None, r.earliest.start if r.earliest else now))


def _intervals_by_doctor(rows: QuerySet[Appointment] | QuerySet[TimeOff]) -> dict[int, list[Interval]]:
    by_doctor: dict[int, list[Interval]] = defaultdict(list)
    for doctor_id, starts_at, ends_at in rows.values_list("doctor_id", "starts_at", "ends_at"):
        by_doctor[doctor_id].append(Interval(starts_at, ends_at))
    return by_doctor


def appointments_visible_to(*, user: User) -> QuerySet[Appointment]:
    """Appointments ``user`` may see: their own as patient or doctor, and
    those of the clinics they administer."""
    return Appointment.objects.filter(
        Q(patient=user) | Q(doctor=user) | Q(clinic_id__in=_administered_clinic_ids(user))
    ).select_related("patient", "doctor", "clinic")


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


def _administered_clinic_ids(user: User) -> QuerySet[Membership, Any]:
    return Membership.objects.filter(user=user, role=Role.ADMIN, is_active=True, clinic__is_active=True).values(
        "clinic_id"
    )


def appointment_get_for_clinic_admin(*, user: User, appointment_id: int) -> Appointment:
    """An appointment of a clinic ``user`` administers (to cancel or move it
    for the patient); "not found" for anyone else."""
    appointment = (
        Appointment.objects.filter(pk=appointment_id)
        .filter(clinic_id__in=_administered_clinic_ids(user))
        .select_related("patient", "doctor", "clinic")
        .first()
    )
    if appointment is None:
        raise Http404
    return appointment


def appointment_get_for_marking(*, user: User, appointment_id: int) -> Appointment:
    """An appointment ``user`` may mark completed or missed: its doctor's, or
    one of a clinic they administer; "not found" for anyone else."""
    appointment = (
        Appointment.objects.filter(pk=appointment_id)
        .filter(Q(doctor=user) | Q(clinic_id__in=_administered_clinic_ids(user)))
        .select_related("patient", "doctor", "clinic")
        .first()
    )
    if appointment is None:
        raise Http404
    return appointment


# Doctors' hours, for the clinic's admins.


def clinic_doctors(*, clinic: Clinic) -> list[User]:
    """The active doctor members of ``clinic``, by name."""
    return list(
        User.objects.filter(
            memberships__clinic=clinic, memberships__role=Role.DOCTOR, memberships__is_active=True
        ).order_by("full_name", "pk")
    )


def clinic_doctor_get(*, clinic: Clinic, doctor_id: int) -> User:
    """A doctor who practises at ``clinic`` (the caller has checked its own
    right to the clinic); "not found" for anyone else."""
    doctor = User.objects.filter(pk=doctor_id).first()
    if doctor is None:
        raise Http404
    if not doctor_practises_at(doctor=doctor, clinic=clinic):
        raise Http404
    return doctor


def availability_rule_get_for_clinic(*, clinic: Clinic, rule_id: int) -> AvailabilityRule:
    """A rule of ``clinic`` for a doctor who still practises there; "not found" otherwise."""
    rule = AvailabilityRule.objects.filter(pk=rule_id, clinic=clinic).select_related("doctor").first()
    if rule is None:
        raise Http404
    if not doctor_practises_at(doctor=rule.doctor, clinic=clinic):
        raise Http404
    return rule


def time_off_get_for_clinic(*, clinic: Clinic, time_off_id: int) -> TimeOff:
    """Time off of a doctor who practises at ``clinic`` (time off is the
    doctor's, whichever clinic); "not found" otherwise."""
    time_off = TimeOff.objects.filter(pk=time_off_id).select_related("doctor").first()
    if time_off is None:
        raise Http404
    if not doctor_practises_at(doctor=time_off.doctor, clinic=clinic):
        raise Http404
    return time_off


def availability_rule_overlapping(
    *,
    doctor: User,
    clinic: Clinic,
    weekdays: Sequence[int],
    start_time: time,
    end_time: time,
    valid_from: date | None,
    valid_until: date | None,
    exclude_id: int | None = None,
) -> AvailabilityRule | None:
    """Another rule of ``doctor`` at ``clinic`` sharing a weekday, some of
    the hours and some of the dates with the ones given, if any."""
    rules = AvailabilityRule.objects.filter(
        doctor=doctor, clinic=clinic, start_time__lt=end_time, end_time__gt=start_time
    )
    if valid_until is not None:
        rules = rules.filter(Q(valid_from__isnull=True) | Q(valid_from__lte=valid_until))
    if valid_from is not None:
        rules = rules.filter(Q(valid_until__isnull=True) | Q(valid_until__gte=valid_from))
    if exclude_id is not None:
        rules = rules.exclude(pk=exclude_id)
    return next((rule for rule in rules.order_by("start_time", "pk") if set(rule.weekdays) & set(weekdays)), None)


class OutsideReason:
    TIME_OFF = "time_off"
    NO_HOURS = "no_hours"
    MODE = "mode"


@dataclass(frozen=True)
class OutsideHours:
    """A booked appointment the doctor's hours no longer hold, and why."""

    appointment: Appointment
    reason: str  # an OutsideReason


@dataclass(frozen=True)
class DoctorHours:
    doctor: User
    rules: list[AvailabilityRule]
    time_off: list[TimeOff]
    outside: list[OutsideHours]


def clinic_hours(*, clinic: Clinic, now: datetime) -> list[DoctorHours]:
    """Each doctor of ``clinic`` with their rules there, their time off not
    yet over, and their booked appointments at the clinic still to come that
    their hours no longer hold. Five queries whatever the number of doctors,
    rules and appointments."""
    doctors = clinic_doctors(clinic=clinic)
    by_doctor = _hours_by_doctor(clinic=clinic, doctor_ids=[d.pk for d in doctors], now=now)
    return [DoctorHours(doctor, *by_doctor[doctor.pk]) for doctor in doctors]


def appointments_outside_hours(*, clinic: Clinic, doctor: User, now: datetime) -> list[OutsideHours]:
    """``doctor``'s booked appointments at ``clinic`` still to come that
    their rules there and their time off no longer hold."""
    return _hours_by_doctor(clinic=clinic, doctor_ids=[doctor.pk], now=now)[doctor.pk][2]


def _hours_by_doctor(
    *, clinic: Clinic, doctor_ids: list[int], now: datetime
) -> dict[int, tuple[list[AvailabilityRule], list[TimeOff], list[OutsideHours]]]:
    rules: dict[int, list[AvailabilityRule]] = defaultdict(list)
    time_off: dict[int, list[TimeOff]] = defaultdict(list)
    booked: dict[int, list[Appointment]] = defaultdict(list)
    if doctor_ids:
        for rule in AvailabilityRule.objects.filter(clinic=clinic, doctor_id__in=doctor_ids).order_by(
            "valid_from", "start_time", "pk"
        ):
            rules[rule.doctor_id].append(rule)
        for leave in TimeOff.objects.filter(doctor_id__in=doctor_ids, ends_at__gt=now).order_by("starts_at"):
            time_off[leave.doctor_id].append(leave)
        for appointment in (
            Appointment.objects.filter(
                clinic=clinic, doctor_id__in=doctor_ids, status=AppointmentStatus.BOOKED, starts_at__gt=now
            )
            .select_related("patient")
            .order_by("starts_at")
        ):
            booked[appointment.doctor_id].append(appointment)
    zone = clinic_zone(clinic)
    result = {}
    for doctor_id in doctor_ids:
        outside = []
        for appointment in booked[doctor_id]:
            reason = _outside_reason(appointment, rules[doctor_id], time_off[doctor_id], zone)
            if reason is not None:
                outside.append(OutsideHours(appointment, reason))
        result[doctor_id] = (rules[doctor_id], time_off[doctor_id], outside)
    return result


def _outside_reason(
    appointment: Appointment, rules: list[AvailabilityRule], time_off: list[TimeOff], zone: zoneinfo.ZoneInfo
) -> str | None:
    """Why the doctor's hours don't hold ``appointment`` any more (None: they
    do). Its time must lie within one rule's hours on its clinic-local day;
    a change of slot length alone doesn't move it out."""
    if any(leave.starts_at < appointment.ends_at and appointment.starts_at < leave.ends_at for leave in time_off):
        return OutsideReason.TIME_OFF
    start = appointment.starts_at.astimezone(zone)
    end = appointment.ends_at.astimezone(zone)
    day = start.date()
    covering = [
        rule
        for rule in rules
        if day.weekday() in rule.weekdays
        and (rule.valid_from is None or rule.valid_from <= day)
        and (rule.valid_until is None or day <= rule.valid_until)
        and end.date() == day
        and rule.start_time <= start.time()
        and end.time() <= rule.end_time
    ]
    if not covering:
        return OutsideReason.NO_HOURS
    if not any(appointment.mode in rule.modes for rule in covering):
        return OutsideReason.MODE
    return None
