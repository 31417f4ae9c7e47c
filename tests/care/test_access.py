"""The access rules of DESIGN.md, care's part: each branch of
``patient_can_be_seen_by``, ``patient_access_reason`` and the one-query
``patients_of_doctor`` list (break-glass patients reachable, not listed)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.selectors import patient_can_be_seen_by, patient_can_be_seen_by_doctor
from apps.care.models import BreakGlassAccess, CareTeamMembership, Referral, ReferralStatus
from apps.care.selectors import patient_access_reason, patients_of_doctor
from apps.clinics.models import Clinic, Membership, Specialty
from apps.scheduling.models import AppointmentStatus
from tests.care.helpers import appointment_between
from tests.factories import PatientFactory

pytestmark = pytest.mark.sqlite


def _sees(user: User, patient: User) -> bool:
    return patient_can_be_seen_by(user=user, patient=patient)


def test_it_lets_a_patient_see_only_their_own_record(alice: User, mallory: User) -> None:
    assert _sees(alice, alice)
    assert not _sees(mallory, alice)
    assert patient_access_reason(user=alice, patient=alice).code == "self"  # type: ignore[union-attr]


def test_it_refuses_anonymous(alice: User) -> None:
    from django.contrib.auth.models import AnonymousUser

    assert not patient_can_be_seen_by(user=AnonymousUser(), patient=alice)  # type: ignore[arg-type]
    assert patient_access_reason(user=AnonymousUser(), patient=alice) is None  # type: ignore[arg-type]


def test_it_lets_a_doctor_with_an_appointment_see_the_record(alice: User, bob: User, clinic: Clinic) -> None:
    appointment_between(patient=alice, doctor=bob, clinic=clinic, days=-30)
    assert _sees(bob, alice)
    assert patient_access_reason(user=bob, patient=alice).code == "appointment"  # type: ignore[union-attr]


def test_it_does_not_count_a_cancelled_appointment(alice: User, bob: User, clinic: Clinic) -> None:
    appointment_between(patient=alice, doctor=bob, clinic=clinic, days=3, status=AppointmentStatus.CANCELLED)
    assert not _sees(bob, alice)


def test_it_gives_the_receiving_doctor_access_while_the_referral_is_open_or_booked(
    alice: User, bob: User, erin: User
) -> None:
    referral = Referral.objects.create(patient=alice, from_doctor=bob, to_doctor=erin, reason="Murmur")
    assert _sees(erin, alice)
    assert patient_access_reason(user=erin, patient=alice).code == "referral"  # type: ignore[union-attr]
    Referral.objects.filter(pk=referral.pk).update(status=ReferralStatus.BOOKED)
    assert _sees(erin, alice)
    for closed in (ReferralStatus.COMPLETED, ReferralStatus.DECLINED, ReferralStatus.CANCELLED):
        Referral.objects.filter(pk=referral.pk).update(status=closed, decline_reason="Not needed")
        assert not _sees(erin, alice)


def test_it_gives_no_access_through_an_unaccepted_specialty_referral(
    alice: User, bob: User, erin: User, cardiology: Specialty
) -> None:
    Referral.objects.create(patient=alice, from_doctor=bob, to_specialty=cardiology, reason="Murmur")
    assert not _sees(erin, alice)


def test_it_lets_the_care_team_see_the_record(alice: User, bob: User, dave: User, clinic: Clinic) -> None:
    row = CareTeamMembership.objects.create(patient=alice, doctor=dave, clinic=clinic, added_by=bob)
    assert _sees(dave, alice)
    assert patient_access_reason(user=dave, patient=alice).code == "care_team"  # type: ignore[union-attr]
    CareTeamMembership.objects.filter(pk=row.pk).update(ended_at=timezone.now())
    assert not _sees(dave, alice)


def test_it_ends_care_team_access_when_the_doctor_leaves_the_clinic(
    alice: User, bob: User, dave: User, clinic: Clinic
) -> None:
    CareTeamMembership.objects.create(patient=alice, doctor=dave, clinic=clinic, added_by=bob)
    Membership.objects.filter(user=dave, clinic=clinic).update(is_active=False)
    assert not _sees(dave, alice)


def test_it_lets_break_glass_in_until_it_expires(alice: User, erin: User, other_clinic: Clinic) -> None:
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        BreakGlassAccess.objects.create(
            doctor=erin,
            patient=alice,
            clinic=other_clinic,
            reason="Unconscious in the ER",
            expires_at=now + timedelta(hours=12),
        )
        assert _sees(erin, alice)
        access = patient_access_reason(user=erin, patient=alice)
        assert access is not None
        assert access.code == "break_glass"
        assert access.until == now + timedelta(hours=12)
    with time_machine.travel(now + timedelta(hours=12, seconds=1), tick=False):
        assert not _sees(erin, alice)
        assert patient_access_reason(user=erin, patient=alice) is None


def test_it_refuses_doctors_without_a_relation(alice: User, bob: User, dave: User, erin: User, carol: User) -> None:
    for someone in (bob, dave, erin, carol):
        assert not _sees(someone, alice)
        assert patient_access_reason(user=someone, patient=alice) is None


def test_it_lets_only_a_doctor_who_sees_the_record_act_as_the_patients_doctor(
    alice: User, bob: User, dave: User, carol: User, clinic: Clinic
) -> None:
    appointment_between(patient=alice, doctor=bob, clinic=clinic, days=-30)
    assert patient_can_be_seen_by_doctor(user=bob, patient=alice)
    assert _sees(alice, alice) and not patient_can_be_seen_by_doctor(user=alice, patient=alice)  # not a doctor
    for someone in (dave, carol):
        assert not patient_can_be_seen_by_doctor(user=someone, patient=alice)


def test_it_lists_related_patients_but_not_break_glass_ones(
    alice: User, bob: User, dave: User, clinic: Clinic, other_clinic: Clinic, mallory: User
) -> None:
    by_appointment = PatientFactory(full_name="By appointment")
    appointment_between(patient=by_appointment, doctor=dave, clinic=clinic)
    cancelled = PatientFactory(full_name="Cancelled")
    appointment_between(patient=cancelled, doctor=dave, clinic=clinic, status=AppointmentStatus.CANCELLED)
    by_referral = PatientFactory(full_name="By referral")
    Referral.objects.create(patient=by_referral, from_doctor=bob, to_doctor=dave, reason="Second opinion")
    closed = PatientFactory(full_name="Closed referral")
    Referral.objects.create(patient=closed, from_doctor=bob, to_doctor=dave, reason="Done", status="completed")
    CareTeamMembership.objects.create(patient=alice, doctor=dave, clinic=clinic, added_by=bob)
    BreakGlassAccess.objects.create(
        doctor=dave, patient=mallory, reason="Found collapsed", expires_at=timezone.now() + timedelta(hours=1)
    )
    listed = set(patients_of_doctor(doctor=dave).values_list("full_name", flat=True))
    assert listed == {"By appointment", "By referral", "Alice"}
    assert _sees(dave, mallory)


def _related_patients(doctor: User, clinic: Clinic, count: int) -> None:
    for _ in range(count):
        patient = PatientFactory()
        appointment_between(patient=patient, doctor=doctor, clinic=clinic)
        referred = PatientFactory()
        Referral.objects.create(patient=referred, from_doctor=doctor, to_doctor=doctor, reason="Follow-up")
        on_team = PatientFactory()
        CareTeamMembership.objects.create(patient=on_team, doctor=doctor, clinic=clinic, added_by=doctor)


def test_it_lists_a_doctors_patients_in_one_query_whatever_their_number(bob: User, clinic: Clinic) -> None:
    _related_patients(bob, clinic, 2)
    with CaptureQueriesContext(connection) as few:
        assert len(list(patients_of_doctor(doctor=bob))) == 6
    _related_patients(bob, clinic, 10)
    with CaptureQueriesContext(connection) as more:
        assert len(list(patients_of_doctor(doctor=bob))) == 36
    assert len(few) == len(more) == 1
