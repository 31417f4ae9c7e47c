"""The care tests' people besides Alice, Bob, Carol and Mallory: Dave, a
doctor of the same clinic with no relation to Alice; Erin, a doctor of
another clinic; and the specialty Erin practises."""

from __future__ import annotations

import pytest

from apps.accounts.models import User
from apps.clinics.models import Clinic, Specialty
from tests.factories import ClinicFactory, SpecialtyFactory, make_doctor


@pytest.fixture
def dave(clinic: Clinic) -> User:
    return make_doctor(clinic=clinic, full_name="Dave", email="dave@example.org", phone="+8613900139001")


@pytest.fixture
def other_clinic(db: None) -> Clinic:
    return ClinicFactory(name="Riverside Clinic")


@pytest.fixture
def cardiology(db: None) -> Specialty:
    return SpecialtyFactory(code="cardiology", name_en="Cardiology", name_zh_hans="心内科")


@pytest.fixture
def erin(other_clinic: Clinic, cardiology: Specialty) -> User:
    doctor = make_doctor(clinic=other_clinic, full_name="Erin", email="erin@example.org")
    doctor.doctor_profile.specialties.add(cardiology)
    return doctor
