"""The signaling benchmark's seed, run inside Telemed (Django set up against
the benchmark's own PostgreSQL database) as a subprocess of
``bench.signaling``, never in the bench process itself:

``python -m bench.signaling_child seed ROOMS LABEL PATH``
    creates a clinic, ROOMS doctors and ROOMS patients (named after LABEL,
    so that each configuration of the benchmark gets people of its own),
    one video appointment per pair that started a minute ago (its room is
    open), a TOTP authenticator for every doctor (staff pages need one), and
    a signed-in session for every one of them, made directly in the session
    store as a sign-in would; writes the rooms
    (``[{appointment, patient_session, doctor_session}]``) to PATH as JSON.
    Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import timedelta
from typing import Any

APPOINTMENT_MINUTES = 30


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "telemed.settings")
    import django

    django.setup()


def session_for(user: Any) -> str:
    """A signed-in session of ``user`` in the configured store: what
    ``django.contrib.auth.login`` keeps, without a request."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return str(session.session_key)


def seed(rooms: int, label: str, path: str) -> None:
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.utils import timezone

    from apps.accounts.models import PatientProfile, User
    from apps.clinics.models import Clinic, DoctorProfile, Membership, Role
    from apps.scheduling.models import Appointment, AppointmentStatus, ConsultMode

    started = time.monotonic()
    unusable_password = make_password(None)
    starts_at = timezone.now().replace(microsecond=0) - timedelta(minutes=1)
    with transaction.atomic():
        clinic = Clinic.objects.create(name=f"Bench Signaling Clinic {label}", timezone="Asia/Shanghai")
        doctors = User.objects.bulk_create(
            [
                User(
                    email=f"bench-signaling-{label}-doctor-{index}@example.org",
                    full_name=f"Bench Doctor {index:03d}",
                    password=unusable_password,
                )
                for index in range(rooms)
            ]
        )
        patients = User.objects.bulk_create(
            [
                User(
                    email=f"bench-signaling-{label}-patient-{index}@example.org",
                    full_name=f"Bench Patient {index:03d}",
                    password=unusable_password,
                )
                for index in range(rooms)
            ]
        )
        Membership.objects.bulk_create([Membership(user=d, clinic=clinic, role=Role.DOCTOR) for d in doctors])
        DoctorProfile.objects.bulk_create([DoctorProfile(user=d, languages=["zh-hans", "en"]) for d in doctors])
        PatientProfile.objects.bulk_create([PatientProfile(user=p) for p in patients])
        for doctor in doctors:
            TOTP.activate(doctor, generate_totp_secret())
        appointments = Appointment.objects.bulk_create(
            [
                Appointment(
                    patient=patient,
                    doctor=doctor,
                    clinic=clinic,
                    starts_at=starts_at,
                    ends_at=starts_at + timedelta(minutes=APPOINTMENT_MINUTES),
                    mode=ConsultMode.VIDEO,
                    status=AppointmentStatus.BOOKED,
                    booked_by=patient,
                )
                for patient, doctor in zip(patients, doctors, strict=True)
            ]
        )
    seeded = [
        {
            "appointment": appointment.pk,
            "patient_session": session_for(patient),
            "doctor_session": session_for(doctor),
        }
        for appointment, patient, doctor in zip(appointments, patients, doctors, strict=True)
    ]
    with open(path, "w", encoding="utf-8") as out:
        json.dump(seeded, out)
    print(json.dumps({"rooms": len(seeded), "seconds": round(time.monotonic() - started, 2)}), flush=True)


def main(argv: list[str]) -> int:
    if argv[:1] == ["seed"] and len(argv) == 4:
        django_setup()
        seed(int(argv[1]), argv[2], argv[3])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
