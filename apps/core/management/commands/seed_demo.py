from __future__ import annotations

import zoneinfo
from datetime import time, timedelta
from typing import Any

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import PatientProfile, User
from apps.accounts.selectors import consent_active
from apps.accounts.services import consent_give
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
        clinic = Clinic.objects.filter(memberships__user=doctor, memberships__role=Role.DOCTOR).first()
        if clinic is None:
            raise CommandError("the demo doctor has no clinic: run seed_demo first")
        return patient, doctor, clinic

    def _appointments(self) -> None:
        patient, doctor, clinic = self._soon_parties()
        if Appointment.objects.filter(patient=patient).exists():
            return
        zone = zoneinfo.ZoneInfo(clinic.timezone)
        last_week = (
            (timezone.now() - timedelta(days=7)).astimezone(zone).replace(hour=9, minute=0, second=0, microsecond=0)
        )
        Appointment.objects.create(
            patient=patient,
            doctor=doctor,
            clinic=clinic,
            starts_at=last_week,
            ends_at=last_week + timedelta(minutes=demo.SLOT_MINUTES),
            mode=ConsultMode.VIDEO,
            status=AppointmentStatus.COMPLETED,
            reason="Blood pressure follow-up",
            booked_by=patient,
            completed_at=last_week + timedelta(minutes=demo.SLOT_MINUTES),
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
