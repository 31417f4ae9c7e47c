from __future__ import annotations

from typing import Any

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP
from django.core.management.base import BaseCommand
from django.db import transaction

from apps.accounts.models import PatientProfile, User
from apps.accounts.selectors import consent_active
from apps.accounts.services import consent_give
from apps.clinics.models import Clinic, DoctorProfile, Membership, Role, Specialty
from apps.core import demo


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

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
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
        self.stdout.write(
            self.style.SUCCESS(f"demo network ready: {Clinic.objects.count()} clinics, {User.objects.count()} users")
        )
