"""The scheduling benchmarks' steps that run inside Telemed (Django set up
against the benchmark's own PostgreSQL database), as subprocesses of
``bench.slots`` and ``bench.booking``, never in the bench process itself:

``python -m bench.scheduling_child slots DOCTORS,DOCTORS... REQUESTS``
    seeds a clinic network in steps of that many doctors in all (each with
    weekly hours, booked appointments and time off) and, after each step,
    counts the queries of the patient's find page and times REQUESTS of them
    in-process through ``django.test.Client``; after the last step also the
    week page of one doctor and the API's slots endpoint. Prints one JSON line.

``python -m bench.scheduling_child booking-seed DOCTORS CLIENTS PATIENTS_PER_CLIENT PATH``
    seeds the network, CLIENTS times PATIENTS_PER_CLIENT patients with consent
    and a personal access token each, and the bare-insert table; writes the
    tokens by client and every free slot of the next 14 days (from tomorrow)
    to PATH as JSON. Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as wall_time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apps.accounts.models import User
    from apps.clinics.models import Clinic

SEED_BATCH_SIZE = 1000
SEARCH_DAYS = 14
# Share of each doctor's free slots over the search window that the seed
# books, and days of booked history before today.
BOOKED_SHARE = 0.3
HISTORY_DAYS = 60
PATIENTS_PER_DOCTOR = 10
CLINICS = (
    ("Hillside Township Clinic", "Asia/Shanghai"),
    ("Riverside Village Clinic", "Asia/Shanghai"),
    ("Mountain Pass Clinic", "Asia/Shanghai"),
    ("Lakeside Clinic", "Asia/Shanghai"),
    ("Kashgar Road Clinic", "Asia/Urumqi"),
)
SPECIALTIES = (
    ("general-practice", "General practice", "全科"),
    ("cardiology", "Cardiology", "心血管内科"),
    ("endocrinology", "Endocrinology", "内分泌科"),
    ("paediatrics", "Paediatrics", "儿科"),
)
HOST = "127.0.0.1"
ACCEPT_ENCODING = "gzip, deflate"


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "telemed.settings")
    import django

    django.setup()


# --- The network ----------------------------------------------------------------


@dataclass(frozen=True)
class RuleShape:
    weekdays: tuple[int, ...]
    start: wall_time
    end: wall_time
    slot_minutes: int
    modes: tuple[str, ...]
    buffer_minutes: int = 0


# A doctor's hours at their main clinic (every doctor has the first; some the
# others), and at a second clinic (every fourth doctor).
MAIN_HOURS = (
    RuleShape((0, 1, 2, 3, 4), wall_time(8), wall_time(12), 20, ("video", "phone")),
    RuleShape((0, 2, 4), wall_time(14), wall_time(17, 30), 30, ("video", "in_person"), buffer_minutes=5),
    RuleShape((5,), wall_time(9), wall_time(12), 15, ("video",)),
)
SECOND_CLINIC_HOURS = RuleShape((1, 3), wall_time(14), wall_time(17), 30, ("video", "phone"))


def clinics_ensure() -> list[Clinic]:
    from apps.clinics.models import Clinic, Specialty
    from apps.scheduling.models import DEFAULT_REMINDER_OFFSETS_MINUTES, BookingPolicy

    clinics = []
    for index, (name, zone) in enumerate(CLINICS):
        clinic, created = Clinic.objects.get_or_create(name=name, defaults={"timezone": zone})
        if created:
            BookingPolicy.objects.create(
                clinic=clinic,
                min_notice_minutes=60 if index % 2 == 0 else 120,
                reminder_offsets_minutes=list(DEFAULT_REMINDER_OFFSETS_MINUTES),
            )
        clinics.append(clinic)
    for code, name_en, name_zh_hans in SPECIALTIES:
        Specialty.objects.get_or_create(code=code, defaults={"name_en": name_en, "name_zh_hans": name_zh_hans})
    return clinics


def _rule(doctor: User, clinic: Clinic, shape: RuleShape) -> Any:
    from apps.scheduling.models import AvailabilityRule

    return AvailabilityRule(
        doctor=doctor,
        clinic=clinic,
        weekdays=list(shape.weekdays),
        start_time=shape.start,
        end_time=shape.end,
        slot_minutes=shape.slot_minutes,
        buffer_minutes=shape.buffer_minutes,
        modes=list(shape.modes),
    )


def doctors_seed(*, first: int, count: int, clinics: list[Clinic], now: datetime) -> list[tuple[int, Clinic]]:
    """Doctors number first..first+count-1 with their hours, time off, booked
    appointments (a share of their free slots, plus past ones) and the
    patients of those; their (doctor id, clinic) pairs."""
    from django.contrib.auth.hashers import make_password
    from django.db import transaction

    from apps.accounts.models import PatientProfile, User
    from apps.clinics.models import DoctorProfile, Membership, Role, Specialty
    from apps.scheduling.models import AvailabilityRule, TimeOff

    unusable_password = make_password(None)
    specialties = list(Specialty.objects.filter(code__in=[code for code, _, _ in SPECIALTIES]).order_by("code"))
    pairs: list[tuple[int, Clinic]] = []
    with transaction.atomic():
        doctors = User.objects.bulk_create(
            [
                User(
                    email=f"bench-doctor-{index}@example.org",
                    full_name=f"Bench Doctor {index:02d}",
                    password=unusable_password,
                )
                for index in range(first, first + count)
            ]
        )
        memberships, profiles, rules, time_off = [], [], [], []
        for index, doctor in zip(range(first, first + count), doctors, strict=True):
            main = clinics[index % len(clinics)]
            memberships.append(Membership(user=doctor, clinic=main, role=Role.DOCTOR))
            profiles.append(DoctorProfile(user=doctor, languages=["zh-hans", "en"] if index % 3 else ["zh-hans"]))
            shapes = MAIN_HOURS if index % 3 == 0 else MAIN_HOURS[:2] if index % 3 == 1 else MAIN_HOURS[:1]
            rules += [_rule(doctor, main, shape) for shape in shapes]
            pairs.append((doctor.pk, main))
            if index % 4 == 0:
                second = clinics[(index + 1) % len(clinics)]
                memberships.append(Membership(user=doctor, clinic=second, role=Role.DOCTOR))
                rules.append(_rule(doctor, second, SECOND_CLINIC_HOURS))
                pairs.append((doctor.pk, second))
            if index % 5 == 0:  # three days off next week
                off_start = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=7)
                time_off.append(
                    TimeOff(
                        doctor=doctor, starts_at=off_start, ends_at=off_start + timedelta(days=3), created_by=doctor
                    )
                )
        Membership.objects.bulk_create(memberships)
        created_profiles = DoctorProfile.objects.bulk_create(profiles)
        for index, profile in enumerate(created_profiles):
            profile.specialties.add(specialties[index % len(specialties)])
        AvailabilityRule.objects.bulk_create(rules)
        TimeOff.objects.bulk_create(time_off)

        patients = User.objects.bulk_create(
            [
                User(
                    phone=f"+86139{first * PATIENTS_PER_DOCTOR + number:08d}",
                    full_name=f"Bench Patient {first * PATIENTS_PER_DOCTOR + number}",
                    password=unusable_password,
                )
                for number in range(count * PATIENTS_PER_DOCTOR)
            ],
            batch_size=SEED_BATCH_SIZE,
        )
        PatientProfile.objects.bulk_create([PatientProfile(user=patient) for patient in patients])
        _appointments_seed(pairs=pairs, doctors=doctors, patients=patients, now=now)
    return pairs


def _appointments_seed(
    *, pairs: list[tuple[int, Clinic]], doctors: list[User], patients: list[User], now: datetime
) -> None:
    """Book a share of each pair's free slots over the search window, and
    completed appointments over the past ``HISTORY_DAYS`` days. Each patient
    sees one doctor only, whose appointments never overlap, so patients'
    never do either."""
    from apps.scheduling.models import Appointment, AppointmentStatus
    from apps.scheduling.selectors import doctors_free_slots

    generator = random.Random(len(doctors))  # test data, not security
    doctor_position = {doctor.pk: position for position, doctor in enumerate(doctors)}
    free_future = doctors_free_slots(pairs=pairs, days=SEARCH_DAYS, now=now)
    free_past = doctors_free_slots(pairs=pairs, days=HISTORY_DAYS, now=now - timedelta(days=HISTORY_DAYS))
    rows = []
    for doctor_id, clinic in pairs:
        position = doctor_position[doctor_id]
        own_patients = patients[position * PATIENTS_PER_DOCTOR : (position + 1) * PATIENTS_PER_DOCTOR]
        past = [slot for slot in free_past[(doctor_id, clinic.pk)] if slot.end <= now]
        for status, slots in (
            (AppointmentStatus.BOOKED, free_future[(doctor_id, clinic.pk)]),
            (AppointmentStatus.COMPLETED, past),
        ):
            for slot in slots:
                if generator.random() >= BOOKED_SHARE:
                    continue
                patient = own_patients[generator.randrange(len(own_patients))]
                rows.append(
                    Appointment(
                        patient=patient,
                        doctor_id=doctor_id,
                        clinic=clinic,
                        starts_at=slot.start,
                        ends_at=slot.end,
                        mode=sorted(slot.modes)[0],
                        status=status,
                        booked_by=patient,
                    )
                )
    Appointment.objects.bulk_create(rows, batch_size=SEED_BATCH_SIZE)


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        # A production table has statistics (autovacuum); a fresh one has none yet.
        cursor.execute("ANALYZE")


def patient_with_consent(*, phone: str, name: str) -> User:
    from apps.accounts.models import PatientProfile, User
    from apps.accounts.services import consent_give

    patient = User.objects.create_user(phone=phone, full_name=name, password=None)
    PatientProfile.objects.create(user=patient)
    consent_give(patient=patient, given_by=patient)
    return patient


# --- slots ---------------------------------------------------------------------


def _percentile_ms(samples_s: list[float], percent: float) -> float:
    ordered = sorted(samples_s)
    rank = max(1, -(-len(ordered) * percent // 100))
    return ordered[int(rank) - 1] * 1000


def _timed_gets(
    client: Any, paths: list[str], *, marker: str | None = None, expected: int | None = None
) -> dict[str, Any]:
    durations, cpu_s = [], []
    for path in paths:
        started, cpu_started = time.perf_counter(), time.process_time()
        response = client.get(path)
        durations.append(time.perf_counter() - started)
        cpu_s.append(time.process_time() - cpu_started)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} answered {response.status_code}")
        if marker is not None and expected is not None:
            found = _body(response).count(marker)
            if found != expected:
                raise RuntimeError(f"GET {path} listed {found} results, not {expected}")
    return {
        "requests": len(durations),
        "p50_ms": round(_percentile_ms(durations, 50), 2),
        "p95_ms": round(_percentile_ms(durations, 95), 2),
        "mean_ms": round(statistics.fmean(durations) * 1000, 2),
        "cpu_mean_ms": round(statistics.fmean(cpu_s) * 1000, 2),
    }


def _body(response: Any) -> str:
    import gzip

    content = response.content
    if response.get("Content-Encoding") == "gzip":
        content = gzip.decompress(content)
    return str(content.decode())


def _query_count(client: Any, path: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} answered {response.status_code}")
    return len(queries)


def slots(steps: list[int], requests: int) -> None:
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from apps.scheduling.models import Appointment, TimeOff

    now = timezone.now()
    clinics = clinics_ensure()
    patient = patient_with_consent(phone="+8613700000001", name="Bench Searcher")
    client = Client(HTTP_HOST=HOST, HTTP_ACCEPT_ENCODING=ACCEPT_ENCODING)
    client.force_login(patient)
    find = reverse("scheduling:find")
    marker = '<section class="card">'
    pairs: list[tuple[int, Clinic]] = []
    seeded = 0
    figures: dict[str, Any] = {"steps": []}
    for doctors in steps:
        seed_started = time.monotonic()
        pairs += doctors_seed(first=seeded, count=doctors - seeded, clinics=clinics, now=now)
        seeded = doctors
        analyze()
        seed_s = time.monotonic() - seed_started
        _timed_gets(client, [find] * 3)  # warm-up: templates, translations, connection
        step = {
            "doctors": doctors,
            "pairs": len(pairs),
            "appointments": Appointment.objects.count(),
            "upcoming_appointments": Appointment.objects.filter(starts_at__gte=now).count(),
            "time_off": TimeOff.objects.count(),
            "queries": _query_count(client, find),
            "seed_s": round(seed_s, 2),
        }
        step.update(_timed_gets(client, [find] * requests, marker=marker, expected=len(pairs)))
        figures["steps"].append(step)

    generator = random.Random(0)  # the choice of doctors to look at, not security
    chosen = [pairs[generator.randrange(len(pairs))] for _ in range(requests)]
    week_paths = [reverse("scheduling:doctor_week", args=[doctor_id, clinic.pk]) for doctor_id, clinic in chosen]
    api_paths = [
        f"{reverse('api_doctor_slots', args=[doctor_id])}?clinic={clinic.pk}&days=7" for doctor_id, clinic in chosen
    ]
    _timed_gets(client, week_paths[:3] + api_paths[:3])
    figures["week_page"] = {"queries": _query_count(client, week_paths[0]), **_timed_gets(client, week_paths)}
    figures["api_slots"] = {"queries": _query_count(client, api_paths[0]), **_timed_gets(client, api_paths)}
    print(json.dumps(figures), flush=True)


# --- booking -------------------------------------------------------------------


def booking_seed(doctors: int, clients: int, patients_per_client: int, path: str) -> None:
    from django.db import connection
    from django.utils import timezone

    from apps.accounts.tokens import token_create
    from apps.scheduling.selectors import doctors_free_slots
    from bench.urls import BARE_TABLE_SQL

    started = time.monotonic()
    now = timezone.now()
    clinics = clinics_ensure()
    pairs = doctors_seed(first=0, count=doctors, clinics=clinics, now=now)
    tokens: list[list[str]] = []
    for client in range(clients):
        tokens.append([])
        for number in range(patients_per_client):
            patient = patient_with_consent(
                phone=f"+86136{client:04d}{number:04d}", name=f"Bench Client {client} Patient {number}"
            )
            _, raw = token_create(user=patient, name="bench", expires_in_days=1)
            tokens[-1].append(raw)
    # From tomorrow (clinic time), so no slot becomes too soon to book during the run.
    tomorrow: date = (now + timedelta(days=1)).date()
    free = doctors_free_slots(pairs=pairs, days=SEARCH_DAYS, now=now, first_day=tomorrow)
    pool = [
        [doctor_id, clinic_id, slot.start.isoformat(), sorted(slot.modes)]
        for (doctor_id, clinic_id), slots in free.items()
        for slot in slots
    ]
    with connection.cursor() as cursor:
        cursor.execute(BARE_TABLE_SQL)
    analyze()
    with open(path, "w", encoding="utf-8") as out:
        json.dump({"tokens": tokens, "slots": pool}, out)
    print(
        json.dumps({"pairs": len(pairs), "free_slots": len(pool), "seconds": round(time.monotonic() - started, 2)}),
        flush=True,
    )


def main(argv: list[str]) -> int:
    if argv[:1] == ["slots"] and len(argv) == 3:
        django_setup()
        slots([int(value) for value in argv[1].split(",")], int(argv[2]))
        return 0
    if argv[:1] == ["booking-seed"] and len(argv) == 5:
        django_setup()
        booking_seed(int(argv[1]), int(argv[2]), int(argv[3]), argv[4])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
