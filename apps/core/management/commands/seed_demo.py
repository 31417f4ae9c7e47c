from __future__ import annotations

import io
import random
import zipfile
import zoneinfo
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP
from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import PatientProfile, User
from apps.accounts.selectors import consent_active
from apps.accounts.services import consent_give
from apps.care.models import CareTeamMembership, ConsultNote, Referral
from apps.care.services import care_team_add, referral_create
from apps.care.services_notes import consult_note_save_draft, consult_note_sign, consult_note_start, diagnosis_add
from apps.clinics.models import Clinic, DoctorProfile, Membership, Role, Specialty
from apps.core import demo
from apps.scheduling.models import (
    DEFAULT_REMINDER_OFFSETS_MINUTES,
    Appointment,
    AppointmentStatus,
    AvailabilityRule,
    BookingPolicy,
    ConsultMode,
)
from apps.vitals.models import EcgRecording, Reading, Source
from apps.vitals.services import ReadingInput, readings_record_many
from apps.vitals.services_ecg import ecg_recording_analyse, ecg_recording_upload

ECG_SAMPLES = Path(__file__).resolve().parents[3] / "vitals" / "ecg" / "samples" / "mitdb"
DEMO_ZONE = zoneinfo.ZoneInfo("Asia/Shanghai")


def _user(*, email: str | None, phone: str | None, full_name: str, language: str = "zh-hans") -> tuple[User, bool]:
    lookup = {"email": email} if email else {"phone": phone}
    user = User.objects.filter(**lookup).first()
    if user is not None:
        return user, False
    user = User.objects.create_user(
        email=email,
        phone=phone,
        password=demo.DEMO_PASSWORD,
        full_name=full_name,
        language=language,
        phone_verified=bool(phone),
    )
    if email:
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return user, True


def _patient(key: str) -> User:
    """A demo patient by email, or by phone for the phone-only ones."""
    return User.objects.get(**({"email": key} if "@" in key else {"phone": key}))


def _doctors_clinic(doctor: User) -> Clinic:
    """The first clinic a demo doctor works at."""
    clinic = Clinic.objects.filter(memberships__user=doctor, memberships__role=Role.DOCTOR).order_by("pk").first()
    if clinic is None:
        raise CommandError("the demo doctor has no clinic: run seed_demo first")
    return clinic


def _past_visit(*, patient: User, doctor: User, days_ago: int, hour: int, mode: str, reason: str) -> None:
    """A completed visit of ``patient`` with ``doctor`` at the doctor's
    clinic ``days_ago`` at ``hour`` (clinic time), written directly (demo
    data may sit outside the doctor's hours)."""
    clinic = _doctors_clinic(doctor)
    starts_at = (
        (timezone.now() - timedelta(days=days_ago))
        .astimezone(zoneinfo.ZoneInfo(clinic.timezone))
        .replace(hour=hour, minute=0, second=0, microsecond=0)
    )
    ends_at = starts_at + timedelta(minutes=demo.SLOT_MINUTES)
    Appointment.objects.create(
        patient=patient,
        doctor=doctor,
        clinic=clinic,
        starts_at=starts_at,
        ends_at=ends_at,
        mode=mode,
        status=AppointmentStatus.COMPLETED,
        reason=reason,
        booked_by=patient,
        completed_at=ends_at,
    )


def _enrol_mfa(user: User) -> None:
    if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
        TOTP.activate(user, demo.DEMO_TOTP_SECRET)
        RecoveryCodes.activate(user)


class Command(BaseCommand):
    help = "Create the demo clinic network (idempotent). --if-empty: only when the database has no users."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--if-empty", action="store_true", help="do nothing if any user exists")
        parser.add_argument(
            "--refresh-soon",
            action="store_true",
            help="only move the demo video appointment to start a few minutes from now",
        )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        if options["refresh_soon"]:
            self._soon_appointment()
            self.stdout.write(self.style.SUCCESS("the demo video appointment starts in a few minutes"))
            return
        if options["if_empty"] and User.objects.exists():
            self.stdout.write("database already has users: demo data not loaded")
            return
        specialties = {}
        for code, name_en, name_zh in demo.SPECIALTIES:
            specialties[code], _ = Specialty.objects.get_or_create(
                code=code, defaults={"name_en": name_en, "name_zh_hans": name_zh}
            )
        clinics = {}
        for key, name, address, phone in demo.CLINICS:
            clinics[key], _ = Clinic.objects.get_or_create(
                name=name, defaults={"timezone": "Asia/Shanghai", "address": address, "phone": phone}
            )
        for email, full_name, specialty_codes, clinic_keys, languages, licence in demo.DOCTORS:
            doctor, _ = _user(email=email, phone=None, full_name=full_name)
            profile, _ = DoctorProfile.objects.get_or_create(
                user=doctor, defaults={"languages": languages, "licence_number": licence}
            )
            profile.specialties.add(*(specialties[code] for code in specialty_codes))
            for key in clinic_keys:
                Membership.objects.get_or_create(user=doctor, clinic=clinics[key], role=Role.DOCTOR)
            _enrol_mfa(doctor)
        for email, full_name, clinic_keys in demo.CLINIC_ADMINS:
            admin, _ = _user(email=email, phone=None, full_name=full_name)
            for key in clinic_keys:
                Membership.objects.get_or_create(user=admin, clinic=clinics[key], role=Role.ADMIN)
            _enrol_mfa(admin)
        site_email, site_name = demo.SITE_ADMIN
        site_admin, created = _user(email=site_email, phone=None, full_name=site_name, language="en")
        if created:
            site_admin.is_staff = site_admin.is_superuser = True
            site_admin.save(update_fields=["is_staff", "is_superuser"])
        _enrol_mfa(site_admin)
        for patient_email, patient_phone, full_name, language, village, consented in demo.PATIENTS:
            patient, _ = _user(email=patient_email, phone=patient_phone, full_name=full_name, language=language)
            PatientProfile.objects.get_or_create(user=patient, defaults={"village": village})
            if consented and consent_active(patient=patient) is None:
                consent_give(patient=patient, given_by=patient)
        self._schedules()
        self._appointments()
        self._glucose_doctor_visit()
        self._palpitations_visit()
        self._readings()
        self._ecg()
        self._signed_note()
        self._referral()
        self._care_team()
        self.stdout.write(
            self.style.SUCCESS(f"demo network ready: {Clinic.objects.count()} clinics, {User.objects.count()} users")
        )

    def _schedules(self) -> None:
        for clinic in Clinic.objects.all():
            BookingPolicy.objects.get_or_create(
                clinic=clinic, defaults={"reminder_offsets_minutes": list(DEFAULT_REMINDER_OFFSETS_MINUTES)}
            )
        for membership in Membership.objects.filter(role=Role.DOCTOR).select_related("user", "clinic"):
            if AvailabilityRule.objects.filter(doctor=membership.user, clinic=membership.clinic).exists():
                continue
            for start, end in demo.WEEKLY_HOURS:
                AvailabilityRule.objects.create(
                    doctor=membership.user,
                    clinic=membership.clinic,
                    weekdays=[0, 1, 2, 3, 4],
                    start_time=time.fromisoformat(start),
                    end_time=time.fromisoformat(end),
                    slot_minutes=demo.SLOT_MINUTES,
                    buffer_minutes=demo.BUFFER_MINUTES,
                    modes=[ConsultMode.VIDEO, ConsultMode.PHONE, ConsultMode.IN_PERSON],
                )

    @staticmethod
    def _soon_parties() -> tuple[User, User, Clinic]:
        """The demo patient and doctor of the "consult now" appointment, and
        the doctor's clinic."""
        patient = User.objects.get(email=demo.SOON_PATIENT)
        doctor = User.objects.get(email=demo.SOON_DOCTOR)
        return patient, doctor, _doctors_clinic(doctor)

    def _appointments(self) -> None:
        patient, doctor, _ = self._soon_parties()
        if Appointment.objects.filter(patient=patient).exists():
            return
        _past_visit(
            patient=patient,
            doctor=doctor,
            days_ago=7,
            hour=9,
            mode=ConsultMode.VIDEO,
            reason="Blood pressure follow-up",
        )
        self._soon_appointment()

    def _soon_appointment(self) -> None:
        patient, doctor, clinic = self._soon_parties()
        starts_at = (timezone.now() + timedelta(minutes=demo.SOON_STARTS_IN_MINUTES)).replace(second=0, microsecond=0)
        ends_at = starts_at + timedelta(minutes=demo.SLOT_MINUTES)
        # Demo data may sit outside the doctor's hours: written directly, but
        # never over another active appointment of either person.
        Appointment.objects.filter(reason=demo.SOON_REASON, status=AppointmentStatus.BOOKED).update(
            status=AppointmentStatus.CANCELLED, cancelled_at=timezone.now(), cancel_reason="demo refresh"
        )
        clashing = Appointment.objects.filter(
            Q(doctor=doctor) | Q(patient=patient),
            status=AppointmentStatus.BOOKED,
            starts_at__lt=ends_at,
            ends_at__gt=starts_at,
        )
        clashing.update(status=AppointmentStatus.CANCELLED, cancelled_at=timezone.now(), cancel_reason="demo refresh")
        Appointment.objects.create(
            patient=patient,
            doctor=doctor,
            clinic=clinic,
            starts_at=starts_at,
            ends_at=ends_at,
            mode=ConsultMode.VIDEO,
            reason=demo.SOON_REASON,
            booked_by=patient,
        )

    # --- Vitals ---------------------------------------------------------------

    @staticmethod
    def _glucose_doctor_visit() -> None:
        """李娜 saw 李秀英 last month: her glucose alerts go to that doctor."""
        patient = User.objects.get(email=demo.GLUCOSE_PATIENT)
        doctor = User.objects.get(email=demo.GLUCOSE_DOCTOR)
        if Appointment.objects.filter(patient=patient).exists():
            return
        _past_visit(
            patient=patient, doctor=doctor, days_ago=30, hour=10, mode=ConsultMode.VIDEO, reason="Glucose review"
        )

    @staticmethod
    def _palpitations_visit() -> None:
        """刘芳 saw 王建国 at the county hospital two weeks ago: he is her doctor."""
        patient = _patient(demo.PALPITATIONS_PATIENT)
        doctor = User.objects.get(email=demo.DEMO_DOCTOR)
        if Appointment.objects.filter(patient=patient).exists():
            return
        _past_visit(
            patient=patient,
            doctor=doctor,
            days_ago=demo.PALPITATIONS_DAYS_AGO,
            hour=14,
            mode=ConsultMode.IN_PERSON,
            reason="Palpitations",
        )

    @staticmethod
    def _at(day: date, hour: int, minute: int, rng: random.Random) -> datetime:
        return datetime.combine(day, time(hour, minute), DEMO_ZONE) + timedelta(minutes=rng.randint(-20, 20))

    def _readings(self) -> None:
        """Months of home readings of the demo patients (see demo.py), once:
        a patient who has readings already is left alone."""
        today = timezone.now().astimezone(DEMO_ZONE).date()
        days = [today - timedelta(days=ago) for ago in range(demo.READINGS_DAYS, 0, -1)]
        rng = random.Random(demo.READINGS_SEED)  # noqa: S311  # demo values, not secrets
        for key, build in (
            (demo.BP_PATIENT, self._bp_items),
            (demo.GLUCOSE_PATIENT, self._glucose_items),
            (demo.NORMAL_PATIENT, self._normal_items),
            (demo.PALPITATIONS_PATIENT, self._heart_rate_items),
        ):
            patient = _patient(key)
            if Reading.objects.filter(patient=patient).exists():
                continue
            readings_record_many(by=patient, items=[*build(patient, days, rng), *self._alert_items(key, patient)])

    @staticmethod
    def _alert_items(key: str, patient: User) -> list[ReadingInput]:
        """The patient's recent readings that alert the demo doctor (demo.ALERT_READINGS)."""
        now = timezone.now().replace(second=0, microsecond=0)
        return [
            ReadingInput(
                patient=patient,
                kind=kind,
                values=values,
                measured_at=now - timedelta(hours=hours_ago),
                source=Source.MANUAL,
                note=note,
            )
            for owner, kind, values, hours_ago, note in demo.ALERT_READINGS
            if owner == key
        ]

    def _bp_items(self, patient: User, days: list[date], rng: random.Random) -> list[ReadingInput]:
        items = []
        (sys_0, dia_0), (sys_1, dia_1) = demo.BP_START_MMHG, demo.BP_END_MMHG
        for index, day in enumerate(days):
            share = index / (len(days) - 1)
            for hour, minute, offset in ((7, 0, 3), (20, 30, 0)):  # mornings run a little higher
                systolic = round(sys_0 + (sys_1 - sys_0) * share + offset + rng.gauss(0, 3))
                diastolic = round(dia_0 + (dia_1 - dia_0) * share + offset / 2 + rng.gauss(0, 2))
                items.append(
                    ReadingInput(
                        patient=patient,
                        kind="blood_pressure",
                        values={"systolic": systolic, "diastolic": diastolic, "pulse": rng.randint(66, 82)},
                        measured_at=self._at(day, hour, minute, rng),
                        source=Source.MANUAL,
                    )
                )
            if day.weekday() == 6:  # Sunday mornings: the scales
                weight = Decimal(str(round(78.0 + 1.5 * share + rng.gauss(0, 0.3), 1)))
                items.append(
                    ReadingInput(
                        patient=patient,
                        kind="weight",
                        values={"weight": weight},
                        measured_at=self._at(day, 7, 15, rng),
                        source=Source.MANUAL,
                    )
                )
        return items

    def _glucose_items(self, patient: User, days: list[date], rng: random.Random) -> list[ReadingInput]:
        items = []
        today = days[-1] + timedelta(days=1)
        for day in days:
            low = demo.GLUCOSE_LOWS.get((today - day).days)
            fasting = Decimal(low) if low else Decimal(str(round(rng.uniform(5.2, 7.0), 1)))
            items.append(
                ReadingInput(
                    patient=patient,
                    kind="glucose",
                    values={"glucose": fasting},
                    unit="mmol/L",
                    context="fasting",
                    measured_at=self._at(day, 6, 50, rng),
                    source=Source.MANUAL,
                    note="头晕、出汗" if low else "",
                )
            )
            if day.weekday() in (1, 3, 5):
                items.append(
                    ReadingInput(
                        patient=patient,
                        kind="glucose",
                        values={"glucose": Decimal(str(round(rng.uniform(7.0, 9.8), 1)))},
                        unit="mmol/L",
                        context="after_meal",
                        measured_at=self._at(day, 19, 30, rng),
                        source=Source.MANUAL,
                    )
                )
        return items

    def _normal_items(self, patient: User, days: list[date], rng: random.Random) -> list[ReadingInput]:
        items = []
        for day in days[-30::7]:
            items.append(
                ReadingInput(
                    patient=patient,
                    kind="blood_pressure",
                    values={"systolic": rng.randint(110, 122), "diastolic": rng.randint(70, 78)},
                    measured_at=self._at(day, 8, 0, rng),
                    source=Source.MANUAL,
                )
            )
            items.append(
                ReadingInput(
                    patient=patient,
                    kind="heart_rate",
                    values={"heart_rate": rng.randint(62, 76)},
                    measured_at=self._at(day, 8, 5, rng),
                    source=Source.MANUAL,
                )
            )
        return items

    def _heart_rate_items(self, patient: User, days: list[date], rng: random.Random) -> list[ReadingInput]:
        """刘芳's pulse since her visit (normal at rest), every other morning."""
        return [
            ReadingInput(
                patient=patient,
                kind="heart_rate",
                values={"heart_rate": rng.randint(72, 96)},
                measured_at=self._at(day, 7, 30, rng),
                source=Source.MANUAL,
            )
            for day in days[-demo.PALPITATIONS_DAYS_AGO :: 2]
        ]

    def _ecg(self) -> None:
        """MIT-BIH record 100 as 张伟's ECG: uploaded as a WFDB zip like the
        upload page's, and analysed here (not by the worker) so it is done
        when the demo starts; the queued message finds it finished."""
        patient = User.objects.get(email=demo.ECG_PATIENT)
        if EcgRecording.objects.filter(patient=patient).exists():
            return
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
            for suffix in (".hea", ".dat"):
                name = demo.ECG_RECORD + suffix
                zipped.writestr(
                    zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), (ECG_SAMPLES / name).read_bytes()
                )
        uploaded = ecg_recording_upload(
            patient=patient,
            by=patient,
            file=ContentFile(archive.getvalue(), name=demo.ECG_FILE_NAME),
            name=demo.ECG_FILE_NAME,
        )
        ecg_recording_analyse(recording_id=uploaded.recording.pk)

    # --- The demo doctor's day ------------------------------------------------------

    @staticmethod
    def _signed_note() -> None:
        """王建国's signed note of 张伟's consult last week, written through
        care's note services as the editor would (audited like his own)."""
        doctor = User.objects.get(email=demo.DEMO_DOCTOR)
        appointment = (
            Appointment.objects.filter(
                patient__email=demo.BP_PATIENT, doctor=doctor, status=AppointmentStatus.COMPLETED
            )
            .order_by("starts_at")
            .first()
        )
        if appointment is None or ConsultNote.objects.filter(appointment=appointment).exists():
            return
        note = consult_note_start(appointment=appointment, by=doctor)
        note = consult_note_save_draft(note=note, by=doctor, fields=demo.NOTE_FIELDS, version=note.version)
        for code in demo.NOTE_DIAGNOSES:
            diagnosis_add(note=note, by=doctor, code=code)
        consult_note_sign(note=note, by=doctor, version=note.version)

    @staticmethod
    def _referral() -> None:
        """李秀英 refers 李娜 to 王建国: it waits on his dashboard, and her
        record (and its alert) is his to see."""
        patient = User.objects.get(email=demo.REFERRAL_PATIENT)
        from_doctor = User.objects.get(email=demo.REFERRAL_FROM)
        if Referral.objects.filter(patient=patient, from_doctor=from_doctor).exists():
            return
        referral_create(
            patient=patient,
            from_doctor=from_doctor,
            to_doctor=User.objects.get(email=demo.DEMO_DOCTOR),
            reason=demo.REFERRAL_REASON,
        )

    @staticmethod
    def _care_team() -> None:
        """王建国 puts 李秀英 on 张伟's care team at the county hospital."""
        patient = User.objects.get(email=demo.CARE_TEAM_PATIENT)
        member = User.objects.get(email=demo.CARE_TEAM_DOCTOR)
        if CareTeamMembership.objects.filter(patient=patient, doctor=member).exists():
            return
        doctor = User.objects.get(email=demo.DEMO_DOCTOR)
        care_team_add(patient=patient, doctor=member, clinic=_doctors_clinic(doctor), by=doctor)
