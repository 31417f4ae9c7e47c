"""``manage.py care_bench_data``: the doctor workspace's benchmark data set.

5,000 patients (profiles, consent) of 5 clinics and 30 doctors; 1,000,000
readings over two years, flagged by the product's rules (``flag_reading``),
with open alerts for the recent urgent and critical ones and acknowledged
ones before; 50,000 appointments (past ones completed, missed or cancelled,
future ones booked, a full day today for the busy doctor); care-team
memberships, signed consult notes with diagnoses. Written with bulk inserts
in batches, not through the services: no audit events, no notifications
(the data is a fixture, not a record of anything that happened).

The busy doctor (``doctor0@bench.invalid``, at "Bench clinic 1") has a tenth
of all patients. Every account is under ``@bench.invalid``; refuses to run on
a database that has any data unless ``--reset``, which empties it only when
every account in it is a bench account (one this command made).
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import time
import zoneinfo
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

BENCH_DOMAIN = "bench.invalid"
NO_PASSWORD = UNUSABLE_PASSWORD_PREFIX + "bench"  # no one signs in with one
BUSY_DOCTOR_EMAIL = f"doctor0@{BENCH_DOMAIN}"
BUSY_SHARE = 0.10  # of all patients, for the busy doctor
SLOT_MIN = 30
DAY_SLOTS = 16  # 09:00-17:00 in 30-minute slots
FUTURE_DAYS = 60
OPEN_ALERT_DAYS = 14  # urgent and critical readings younger than this have an open alert
BATCH = 2000  # rows per INSERT (PostgreSQL takes at most 65,535 parameters)
ZONE = zoneinfo.ZoneInfo("Asia/Shanghai")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超"]
VILLAGES = ["Shuikou", "Dongshan", "Xiping", "Nanwan", "Beilin", "Huangtang", "Qingshi", "Longmen"]
_rng = random.Random()  # noqa: S311  # test data, seeded by --seed: the same data set each time
CONDITIONS = {
    "hypertension": ("I10", "Essential (primary) hypertension"),
    "diabetes": ("E11.9", "Type 2 diabetes mellitus without complications"),
    "copd": ("J44.9", "Chronic obstructive pulmonary disease, unspecified"),
    "hyperlipidaemia": ("E78.5", "Hyperlipidemia, unspecified"),
}


@dataclass(frozen=True)
class Sizes:
    clinics: int
    doctors: int
    patients: int
    readings: int
    appointments: int
    days: int


@dataclass
class PatientPlan:
    """One generated patient: their doctors and what ails them."""

    user_id: int
    clinic_index: int
    doctor_ids: list[int]  # the first is their main doctor
    systolic: int  # their usual blood pressure
    diabetic: bool
    copd: bool
    height_cm: int
    weight_kg: float


class Command(BaseCommand):
    help = "Build the doctor workspace's benchmark data set (5,000 patients, 1,000,000 readings, 50,000 appointments)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--clinics", type=int, default=5)
        parser.add_argument("--doctors", type=int, default=30)
        parser.add_argument("--patients", type=int, default=5000)
        parser.add_argument("--readings", type=int, default=1_000_000)
        parser.add_argument("--appointments", type=int, default=50_000)
        parser.add_argument("--days", type=int, default=730, help="how far back the readings and appointments go")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument(
            "--reset", action="store_true", help="empty the database first (only if it holds nothing but bench data)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        sizes = Sizes(
            clinics=options["clinics"],
            doctors=options["doctors"],
            patients=options["patients"],
            readings=options["readings"],
            appointments=options["appointments"],
            days=options["days"],
        )
        if min(sizes.clinics, sizes.doctors, sizes.patients, sizes.days) < 1 or sizes.doctors < sizes.clinics:
            raise CommandError("need at least one clinic, one doctor per clinic, one patient and one day")
        if sizes.readings < 0 or sizes.appointments < 0:
            raise CommandError("counts cannot be negative")
        self._ready(reset=options["reset"])
        if connection.vendor != "postgresql":
            self.stderr.write("note: the benchmark's figures are for PostgreSQL; this database is " + connection.vendor)
        _rng.seed(options["seed"])
        started = time.perf_counter()
        now = timezone.now()
        doctors, clinics = self._timed("clinics and doctors", lambda: _staff(sizes))
        plans = self._timed("patients, profiles, consents", lambda: _patients(sizes, doctors, clinics, now=now))
        self._timed("appointments", lambda: _appointments(sizes, plans, doctors, clinics, now=now))
        self._timed("readings and alerts", lambda: _readings(sizes, plans, now=now))
        self._timed("care teams, notes, diagnoses", lambda: _care(plans, clinics, now=now))
        if connection.vendor == "postgresql":
            self._timed("ANALYZE", _analyze)
        self.stdout.write(
            self.style.SUCCESS(
                f"bench data built in {time.perf_counter() - started:.1f} s; the busy doctor is {BUSY_DOCTOR_EMAIL}"
            )
        )

    def _timed(self, label: str, work: Any) -> Any:
        started = time.perf_counter()
        result = work()
        self.stdout.write(f"  {label}: {time.perf_counter() - started:.1f} s")
        self.stdout.flush()
        return result

    def _ready(self, *, reset: bool) -> None:
        from apps.accounts.models import User

        if not User.objects.exists():
            return
        if not reset:
            raise CommandError("the database already has data: use a fresh one, or --reset to rebuild bench data")
        if User.objects.exclude(email__endswith=f"@{BENCH_DOMAIN}").exists():
            raise CommandError("--reset empties only a database of bench data, and this one has other accounts")
        # TRUNCATE, not DELETE: the audit log is append-only.
        call_command("flush", interactive=False, verbosity=0)


def _batches(rows: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _insert(model: Any, rows: Sequence[Any]) -> list[Any]:
    """Insert ``rows`` (with their new ids set, on PostgreSQL) in batches."""
    created: list[Any] = []
    for batch in _batches(rows):
        with transaction.atomic():
            created += model.objects.bulk_create(batch)
    return created


def _totp_secret() -> str:
    return base64.b32encode(os.urandom(20)).decode()


def _staff(sizes: Sizes) -> tuple[list[Any], list[Any]]:
    from allauth.mfa.totp.internal.auth import TOTP

    from apps.accounts.models import User
    from apps.clinics.models import Clinic, DoctorProfile, Membership, Role

    clinics = _insert(
        Clinic, [Clinic(name=f"Bench clinic {i + 1}", timezone="Asia/Shanghai") for i in range(sizes.clinics)]
    )
    doctors = _insert(
        User,
        [
            User(
                email=f"doctor{i}@{BENCH_DOMAIN}",
                full_name=f"Dr {_rng.choice(SURNAMES)}{_rng.choice(GIVEN)} {i}",
                timezone="Asia/Shanghai",
                language="en",
                password=NO_PASSWORD,  # benches sign in with a session
            )
            for i in range(sizes.doctors)
        ],
    )
    _insert(DoctorProfile, [DoctorProfile(user=doctor, languages=["zh-hans", "en"]) for doctor in doctors])
    _insert(
        Membership,
        [
            Membership(user=doctor, clinic=clinics[i % len(clinics)], role=Role.DOCTOR)
            for i, doctor in enumerate(doctors)
        ],
    )
    admins = _insert(
        User,
        [
            User(email=f"admin{i}@{BENCH_DOMAIN}", full_name=f"Bench admin {i}", password=NO_PASSWORD)
            for i in range(len(clinics))
        ],
    )
    _insert(Membership, [Membership(user=a, clinic=c, role=Role.ADMIN) for a, c in zip(admins, clinics, strict=True)])
    for user in [*doctors, *admins]:
        TOTP.activate(user, _totp_secret())  # staff pages need MFA enrolled
    return doctors, clinics


def _doctors_of(doctors: Sequence[Any], clinic_index: int, clinics: int) -> list[Any]:
    return [doctor for i, doctor in enumerate(doctors) if i % clinics == clinic_index]


def _patients(sizes: Sizes, doctors: list[Any], clinics: list[Any], *, now: datetime) -> list[PatientPlan]:
    from apps.accounts.models import Consent, ConsentKind, PatientProfile, Sex, User

    users = [
        User(
            email=f"patient{i}@{BENCH_DOMAIN}",
            phone=f"+86137{i:08d}",
            phone_verified=True,
            full_name=f"{_rng.choice(SURNAMES)}{_rng.choice(GIVEN)}{i}",
            timezone="Asia/Shanghai",
            language=_rng.choice(["zh-hans", "zh-hans", "en"]),
            password=NO_PASSWORD,
        )
        for i in range(sizes.patients)
    ]
    created = _insert(User, users)  # with their ids (RETURNING, on PostgreSQL and SQLite)
    # A tenth of everyone, and three times a doctor's average share at least.
    busy_count = min(sizes.patients, max(int(sizes.patients * BUSY_SHARE), -(-3 * sizes.patients // sizes.doctors)))
    plans = []
    profiles, consents = [], []
    for index, user in enumerate(created):
        if index < busy_count:
            clinic_index, main = 0, doctors[0]
        else:
            clinic_index = index % len(clinics)
            others = [d for d in _doctors_of(doctors, clinic_index, len(clinics)) if d.pk != doctors[0].pk]
            main = _rng.choice(others or doctors)
        colleagues = [d for d in _doctors_of(doctors, clinic_index, len(clinics)) if d.pk != main.pk]
        second = [_rng.choice(colleagues)] if colleagues and _rng.random() < 0.4 else []
        systolic = int(_rng.gauss(138, 16))
        plans.append(
            PatientPlan(
                user_id=user.pk,
                clinic_index=clinic_index,
                doctor_ids=[main.pk, *(d.pk for d in second)],
                systolic=max(105, min(165, systolic)),
                diabetic=_rng.random() < 0.3,
                copd=_rng.random() < 0.08,
                height_cm=_rng.randint(150, 180),
                weight_kg=round(_rng.uniform(48, 95), 1),
            )
        )
        born = date(now.year - _rng.randint(30, 88), _rng.randint(1, 12), _rng.randint(1, 28))
        profiles.append(
            PatientProfile(
                user=user,
                date_of_birth=born,
                sex=_rng.choice([Sex.FEMALE, Sex.MALE]),
                village=_rng.choice(VILLAGES),
                glucose_unit="mmol/L",
            )
        )
        consents.append(
            Consent(
                patient=user,
                kind=ConsentKind.HEALTH_DATA,
                version=settings.HEALTH_DATA_CONSENT_VERSION,
                given_at=now - timedelta(days=sizes.days + 30),
                given_by=user,
            )
        )
    _insert(PatientProfile, profiles)
    _insert(Consent, consents)
    return plans


def _slot_start(day: date, slot: int) -> datetime:
    return datetime(day.year, day.month, day.day, 9, 0, tzinfo=ZONE) + timedelta(minutes=SLOT_MIN * slot)


def _appointments(
    sizes: Sizes, plans: list[PatientPlan], doctors: list[Any], clinics: list[Any], *, now: datetime
) -> None:
    """Each patient's share of the appointments, with their own doctors, in
    slots no doctor or patient holds twice; the busy doctor's day today is full."""
    from apps.scheduling.models import Appointment, AppointmentStatus

    today = now.astimezone(ZONE).date()
    first = today - timedelta(days=sizes.days)
    days = [
        first + timedelta(days=n)
        for n in range(sizes.days + FUTURE_DAYS + 1)
        if (first + timedelta(days=n)).weekday() < 5 and first + timedelta(days=n) != today
    ]
    taken: dict[int, set[tuple[date, int]]] = {doctor.pk: set() for doctor in doctors}
    patient_taken: dict[int, set[tuple[date, int]]] = {plan.user_id: set() for plan in plans}
    clinic_of = {doctor.pk: clinics[i % len(clinics)].pk for i, doctor in enumerate(doctors)}
    rows = []

    def add(plan: PatientPlan, doctor_id: int, day: date, slot: int) -> None:
        starts_at = _slot_start(day, slot)
        if day > today or (day == today and starts_at > now):
            status = AppointmentStatus.BOOKED
        else:
            status = _rng.choices(
                [AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW, AppointmentStatus.CANCELLED], [85, 10, 5]
            )[0]
        ends_at = starts_at + timedelta(minutes=SLOT_MIN)
        rows.append(
            Appointment(
                patient_id=plan.user_id,
                doctor_id=doctor_id,
                clinic_id=clinic_of[doctor_id],
                starts_at=starts_at,
                ends_at=ends_at,
                mode=_rng.choice(["video", "video", "phone"]),
                status=status,
                reason=_rng.choice(["Blood pressure review", "Diabetes follow-up", "Cough", "Dizziness", ""]),
                booked_by_id=plan.user_id,
                completed_at=ends_at if status == AppointmentStatus.COMPLETED else None,
                duration_s=_rng.randint(300, 1500) if status == AppointmentStatus.COMPLETED else None,
                cancelled_at=starts_at - timedelta(days=1) if status == AppointmentStatus.CANCELLED else None,
            )
        )
        taken[doctor_id].add((day, slot))
        patient_taken[plan.user_id].add((day, slot))

    # Today: the busy doctor's whole day, with his own patients.
    busy = doctors[0].pk
    busy_plans = [plan for plan in plans if plan.doctor_ids[0] == busy]
    if sizes.appointments >= DAY_SLOTS and busy_plans:
        for slot in range(DAY_SLOTS):
            add(_rng.choice(busy_plans), busy, today, slot)
    remaining = sizes.appointments - len(rows)
    per_patient, extra = divmod(max(0, remaining), len(plans))
    for index, plan in enumerate(plans):
        for _ in range(per_patient + (1 if index < extra else 0)):
            doctor_id = plan.doctor_ids[0] if _rng.random() < 0.8 else _rng.choice(plan.doctor_ids)
            for _attempt in range(50):
                key = (_rng.choice(days), _rng.randrange(DAY_SLOTS))
                if key not in taken[doctor_id] and key not in patient_taken[plan.user_id]:
                    add(plan, doctor_id, *key)
                    break
    _insert(Appointment, rows)


def _content_hash(kind: str, values: dict[str, Decimal], context: str, measured_at: datetime) -> str:
    """As apps/vitals/services.py computes it (one reading per content)."""
    moment = measured_at.astimezone(UTC).replace(microsecond=0).isoformat()
    numbers = ",".join(f"{name}={values[name].normalize():f}" for name in sorted(values))
    return hashlib.sha256(f"{kind}|{moment}|{context}|{numbers}".encode()).hexdigest()


def _reading_values(plan: PatientPlan, kind: str) -> tuple[dict[str, Decimal], str]:
    if kind == "blood_pressure":
        systolic = int(_rng.gauss(plan.systolic, 12))
        if _rng.random() < 0.003:
            systolic = _rng.randint(182, 215)  # the odd crisis
        systolic = max(80, min(240, systolic))
        diastolic = max(45, min(140, int(systolic * _rng.uniform(0.58, 0.68))))
        return {
            "systolic": Decimal(systolic),
            "diastolic": Decimal(diastolic),
            "pulse": Decimal(_rng.randint(55, 100)),
        }, ""
    if kind == "glucose":
        context = _rng.choice(["fasting", "fasting", "after_meal", "before_meal", "bedtime"])
        mean = 8.5 if plan.diabetic else 5.4
        value = max(2.2, _rng.gauss(mean + (1.5 if context == "after_meal" else 0), 1.6 if plan.diabetic else 0.6))
        return {"glucose": Decimal(f"{value:.1f}")}, context
    if kind == "weight":
        weight = Decimal(f"{plan.weight_kg + _rng.uniform(-1.5, 1.5):.1f}")
        return {"weight": weight, "bmi": (weight / (Decimal(plan.height_cm) / 100) ** 2).quantize(Decimal("0.1"))}, ""
    if kind == "spo2":
        return {"spo2": Decimal(_rng.randint(88, 95) if plan.copd else _rng.randint(94, 100))}, ""
    if kind == "heart_rate":
        return {"heart_rate": Decimal(_rng.randint(52, 110))}, ""
    return {"temperature": Decimal(f"{_rng.gauss(36.6, 0.4):.1f}")}, ""


def _kinds(plan: PatientPlan) -> tuple[list[str], list[int]]:
    if plan.diabetic:
        return ["blood_pressure", "glucose", "weight", "heart_rate", "spo2", "temperature"], [40, 40, 8, 4, 4, 4]
    return ["blood_pressure", "glucose", "weight", "heart_rate", "spo2", "temperature"], [
        65,
        8,
        12,
        5,
        6 + 6 * plan.copd,
        4,
    ]


def _json(values: dict[str, Decimal]) -> dict[str, float | int]:
    return {name: int(v) if v == v.to_integral_value() else float(v) for name, v in values.items()}


def _readings(sizes: Sizes, plans: list[PatientPlan], *, now: datetime) -> None:
    """The readings of a few patients at a time (memory stays flat), each
    patient's spread over the period, with an alert for each urgent or
    critical one: open when recent, acknowledged by their doctor before."""
    from apps.vitals.flags import flag_reading
    from apps.vitals.models import Alert, AlertStatus, Reading

    if not sizes.readings:
        return
    per_patient, extra = divmod(sizes.readings, len(plans))
    span_s = sizes.days * 86400
    open_after = now - timedelta(days=OPEN_ALERT_DAYS)
    group: list[Reading] = []
    owners: list[PatientPlan] = []

    def flush() -> None:
        created = _insert(Reading, group)
        alerts = []
        for reading, plan in zip(created, owners, strict=True):
            if reading.severity not in ("urgent", "critical") or reading.pk is None:
                continue
            recent = reading.measured_at >= open_after
            alerts.append(
                Alert(
                    patient_id=reading.patient_id,
                    reading_id=reading.pk,
                    severity=reading.severity,
                    status=AlertStatus.OPEN if recent else AlertStatus.ACKNOWLEDGED,
                    acknowledged_by_id=None if recent else plan.doctor_ids[0],
                    acknowledged_at=None if recent else reading.measured_at + timedelta(hours=_rng.randint(1, 30)),
                    acknowledge_note="" if recent else "Called the patient; advice given.",
                )
            )
        _insert(Alert, alerts)
        group.clear()
        owners.clear()

    for index, plan in enumerate(plans):
        count = per_patient + (1 if index < extra else 0)
        names, weights = _kinds(plan)
        seen: set[str] = set()
        # Evenly over the period with jitter, the latest a few hours ago.
        for n in range(count):
            offset = span_s * (count - n) / max(count, 1) + _rng.uniform(0, 3600)
            measured_at = (now - timedelta(seconds=offset)).replace(microsecond=0)
            kind = _rng.choices(names, weights)[0]
            values, context = _reading_values(plan, kind)
            content_hash = _content_hash(kind, {k: v for k, v in values.items() if k != "bmi"}, context, measured_at)
            if content_hash in seen:
                continue
            seen.add(content_hash)
            flag = flag_reading(kind=kind, values=values, context=context)
            group.append(
                Reading(
                    patient_id=plan.user_id,
                    kind=kind,
                    values=_json(values),
                    context=context,
                    measured_at=measured_at,
                    source=_rng.choice(["manual", "manual", "device", "api"]),
                    entered_by_id=plan.user_id,
                    category=flag.category,
                    severity=flag.severity,
                    rule=flag.rule,
                    content_hash=content_hash,
                )
            )
            owners.append(plan)
        if len(group) >= 10 * BATCH:
            flush()
    if group:
        flush()


def _care(plans: list[PatientPlan], clinics: list[Any], *, now: datetime) -> None:
    """Care teams (the second doctor), signed notes of a third of the
    completed consults, and the patient's conditions as diagnoses of their
    first note; skipped when the care models are not there."""
    try:
        from apps.care.models import CareTeamMembership, ConsultNote, Diagnosis, NoteStatus
    except ImportError:
        return
    from apps.scheduling.models import Appointment, AppointmentStatus

    teams = [
        CareTeamMembership(
            patient_id=plan.user_id,
            doctor_id=plan.doctor_ids[1],
            clinic_id=clinics[plan.clinic_index].pk,
            added_by_id=plan.doctor_ids[0],
        )
        for plan in plans
        if len(plan.doctor_ids) > 1
    ]
    _insert(CareTeamMembership, teams)
    completed = Appointment.objects.filter(
        patient_id__in=[plan.user_id for plan in plans], status=AppointmentStatus.COMPLETED
    ).values_list("id", "patient_id", "doctor_id")
    notes: list[Any] = []
    noted: set[int] = set()
    for appointment_id, patient_id, doctor_id in completed.iterator(chunk_size=5000):
        if patient_id in noted and _rng.random() > 0.33:
            continue
        noted.add(patient_id)
        notes.append(
            ConsultNote(
                appointment_id=appointment_id,
                patient_id=patient_id,
                author_id=doctor_id,
                subjective="Feels well; occasional headache in the morning.",
                objective="Home readings reviewed.",
                assessment="Stable.",
                plan="Continue current medication; keep measuring twice a day.",
                medications="Amlodipine 5 mg once daily",
                advice="Less salt; walk 30 minutes a day.",
                patient_summary="Keep taking your medicine and measuring your blood pressure.",
                status=NoteStatus.DRAFT,
                signed_at=None,
            )
        )
    created = _insert(ConsultNote, notes)
    by_patient = {plan.user_id: plan for plan in plans}
    first_note: dict[int, Any] = {}
    for note in created:
        if note.pk is not None and note.patient_id not in first_note:
            first_note[note.patient_id] = note
    diagnoses = []
    for patient_id, note in first_note.items():
        plan = by_patient[patient_id]
        conditions = ["hypertension"] if plan.systolic >= 135 else []
        conditions += ["diabetes"] if plan.diabetic else []
        conditions += ["copd"] if plan.copd else []
        conditions += ["hyperlipidaemia"] if _rng.random() < 0.2 else []
        for position, name in enumerate(conditions):
            code, description = CONDITIONS[name]
            diagnoses.append(
                Diagnosis(
                    note_id=note.pk,
                    patient_id=patient_id,
                    code=code,
                    description=description,
                    is_primary=position == 0,
                    onset_date=(now - timedelta(days=_rng.randint(400, 3000))).date(),
                )
            )
    _insert(Diagnosis, diagnoses)
    # Signed last: a signed note takes no new diagnoses.
    ConsultNote.objects.filter(status=NoteStatus.DRAFT, author__email__endswith=f"@{BENCH_DOMAIN}").update(
        status=NoteStatus.SIGNED, signed_at=now - timedelta(days=1), signed_by_id=F("author_id")
    )


def _analyze() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
