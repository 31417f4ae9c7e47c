"""Factories for the test data of every app."""

from __future__ import annotations

from typing import Any

import factory
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP

from apps.accounts.models import PatientProfile, User
from apps.clinics.models import Clinic, DoctorProfile, Membership, Role, Specialty

PASSWORD = "correct-horse-battery-9"
TOTP_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    full_name = factory.Sequence(lambda n: f"Person {n}")
    email = factory.Sequence(lambda n: f"person{n}@example.org")
    language = "en"
    timezone = "Asia/Shanghai"
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def verified_email(obj: User, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create and obj.email:
            EmailAddress.objects.create(user=obj, email=obj.email, verified=True, primary=True)


class PatientFactory(UserFactory):
    @factory.post_generation
    def profile(obj: User, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create:
            PatientProfile.objects.create(user=obj, village="Hillside")


class ClinicFactory(factory.django.DjangoModelFactory[Clinic]):
    class Meta:
        model = Clinic

    name = factory.Sequence(lambda n: f"Clinic {n}")
    timezone = "Asia/Shanghai"


class SpecialtyFactory(factory.django.DjangoModelFactory[Specialty]):
    class Meta:
        model = Specialty
        django_get_or_create = ("code",)

    code = "general-practice"
    name_en = "General practice"
    name_zh_hans = "全科"


def make_doctor(*, clinic: Clinic, mfa: bool = True, **kwargs: Any) -> User:
    doctor = UserFactory(**kwargs)
    Membership.objects.create(user=doctor, clinic=clinic, role=Role.DOCTOR)
    profile = DoctorProfile.objects.create(user=doctor, languages=["zh-hans", "en"])
    profile.specialties.add(SpecialtyFactory())
    if mfa:
        enrol_totp(doctor)
    return doctor


def make_clinic_admin(*, clinic: Clinic, mfa: bool = True, **kwargs: Any) -> User:
    admin = UserFactory(**kwargs)
    Membership.objects.create(user=admin, clinic=clinic, role=Role.ADMIN)
    if mfa:
        enrol_totp(admin)
    return admin


def enrol_totp(user: User) -> None:
    if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
        TOTP.activate(user, TOTP_SECRET)
