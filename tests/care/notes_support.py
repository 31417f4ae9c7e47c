"""Shared data of the consult-note tests: Alice's appointment with Bob, its
note, and the doctors who have no relation to her."""

from __future__ import annotations

from typing import Any

import pytest

from apps.accounts.models import User
from apps.care.models import ConsultNote
from apps.care.services_notes import consult_note_save_draft, consult_note_sign, consult_note_start, diagnosis_add
from apps.clinics.models import Clinic
from apps.scheduling.models import Appointment
from tests.care.helpers import appointment_between
from tests.factories import ClinicFactory, make_doctor

COMPLETE = {
    "subjective": "Headaches in the morning for two weeks.",
    "assessment": "Essential hypertension, not controlled.",
    "plan": "Start amlodipine 5 mg once daily. Home BP twice daily.",
    "medications": "Amlodipine 5 mg, once a day in the morning",
    "advice": "Less salt; walk 30 minutes a day.",
    "patient_summary": "Your blood pressure is high. Take one amlodipine tablet every morning.",
    "follow_up_after_days": 14,
}


@pytest.fixture
def appointment(alice: User, bob: User, clinic: Clinic) -> Appointment:
    return appointment_between(patient=alice, doctor=bob, clinic=clinic, days=-0.01)


@pytest.fixture
def note(appointment: Appointment, bob: User) -> ConsultNote:
    return consult_note_start(appointment=appointment, by=bob)


def fill(note: ConsultNote, by: User, **fields: Any) -> ConsultNote:
    return consult_note_save_draft(note=note, by=by, fields={**COMPLETE, **fields}, version=note.version)


def signed(note: ConsultNote, by: User, code: str = "I10") -> ConsultNote:
    note = fill(note, by)
    diagnosis_add(note=note, by=by, code=code)
    return consult_note_sign(note=note, by=by)


@pytest.fixture
def signed_note(note: ConsultNote, bob: User) -> ConsultNote:
    return signed(note, bob)


@pytest.fixture
def dora(clinic: Clinic) -> User:
    """A doctor of Alice's clinic with no relation to her."""
    return make_doctor(clinic=clinic, full_name="Dora", email="dora@example.org")


@pytest.fixture
def eve(db: None) -> User:
    """A doctor of another clinic."""
    return make_doctor(clinic=ClinicFactory(name="Far Clinic"), full_name="Eve", email="eve@example.org")
