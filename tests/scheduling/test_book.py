from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest

from apps.accounts.models import User
from apps.accounts.services import consent_withdraw
from apps.audit.models import AuditEvent
from apps.clinics.models import Clinic, Membership
from apps.scheduling.models import Appointment, AvailabilityRule, BookingPolicy, TimeOff
from apps.scheduling.services import BookingError
from tests.factories import ClinicFactory, PatientFactory, make_doctor
from tests.scheduling.conftest import NOW, SHANGHAI, TOMORROW_9, book


@pytest.mark.sqlite
def test_it_books_an_offered_slot_and_audits_it(
    alice: User, bob: User, clinic: Clinic, hours: AvailabilityRule
) -> None:
    appointment = book(alice, bob, clinic)
    assert appointment.ends_at - appointment.starts_at == timedelta(minutes=30)
    assert appointment.status == "booked"
    assert AuditEvent.objects.filter(object_type="appointment", object_id=str(appointment.pk), patient=alice).exists()


@pytest.mark.sqlite
def test_it_refuses_a_slot_already_taken(alice: User, bob: User, clinic: Clinic, hours: AvailabilityRule) -> None:
    book(alice, bob, clinic)
    other = PatientFactory()
    from apps.accounts.services import consent_give

    consent_give(patient=other, given_by=other)
    with pytest.raises(BookingError) as refused:
        book(other, bob, clinic)
    assert refused.value.code == "slot_taken"
    assert Appointment.objects.count() == 1


@pytest.mark.sqlite
def test_a_patient_cannot_hold_two_overlapping_appointments(
    alice: User, bob: User, clinic: Clinic, hours: AvailabilityRule
) -> None:
    book(alice, bob, clinic)
    dan = make_doctor(clinic=clinic)
    AvailabilityRule.objects.create(
        doctor=dan, clinic=clinic, weekdays=[2], start_time=time(9), end_time=time(10), slot_minutes=20, modes=["video"]
    )
    with pytest.raises(BookingError) as refused:
        book(alice, dan, clinic, starts_at=TOMORROW_9 + timedelta(minutes=20))
    assert refused.value.code == "patient_busy"


@pytest.mark.parametrize(
    ("starts_at", "code"),
    [
        (NOW - timedelta(hours=1), "in_past"),
        (NOW + timedelta(minutes=30), "too_soon"),
        (TOMORROW_9 + timedelta(days=70), "too_far"),
        (TOMORROW_9 + timedelta(minutes=10), "not_offered"),  # off the slot grid
        (datetime(2026, 12, 5, 9, 0, tzinfo=SHANGHAI), "not_offered"),  # a Saturday
        (TOMORROW_9.replace(hour=12), "not_offered"),  # after hours
    ],
)
def test_it_refuses_times_outside_the_rules_and_policy(
    alice: User, bob: User, clinic: Clinic, hours: AvailabilityRule, starts_at: datetime, code: str
) -> None:
    with pytest.raises(BookingError) as refused:
        book(alice, bob, clinic, starts_at=starts_at)
    assert refused.value.code == code
    assert refused.value.message
    assert not Appointment.objects.exists()


def test_it_refuses_time_off(alice: User, bob: User, clinic: Clinic, hours: AvailabilityRule) -> None:
    TimeOff.objects.create(doctor=bob, starts_at=TOMORROW_9, ends_at=TOMORROW_9 + timedelta(days=1), created_by=bob)
    with pytest.raises(BookingError) as refused:
        book(alice, bob, clinic)
    assert refused.value.code == "not_offered"


def test_it_follows_the_clinics_policy(alice: User, bob: User, clinic: Clinic, hours: AvailabilityRule) -> None:
    BookingPolicy.objects.create(clinic=clinic, min_notice_minutes=48 * 60, max_ahead_days=30)
    with pytest.raises(BookingError) as refused:
        book(alice, bob, clinic)
    assert refused.value.code == "too_soon"


def test_it_refuses_a_mode_the_doctor_does_not_offer(
    alice: User, bob: User, clinic: Clinic, hours: AvailabilityRule
) -> None:
    with pytest.raises(BookingError) as refused:
        book(alice, bob, clinic, mode="in_person")
    assert refused.value.code == "mode_not_offered"


def test_it_needs_consent(alice: User, bob: User, clinic: Clinic, hours: AvailabilityRule) -> None:
    consent_withdraw(patient=alice, withdrawn_by=alice)
    with pytest.raises(BookingError) as refused:
        book(alice, bob, clinic)
    assert refused.value.code == "no_consent"


@pytest.mark.sqlite
def test_it_needs_consent_to_the_current_text(alice: User, bob: User, clinic: Clinic, hours: AvailabilityRule) -> None:
    from apps.accounts.models import Consent

    Consent.objects.filter(patient=alice).update(version="2020-01")
    with pytest.raises(BookingError) as refused:
        book(alice, bob, clinic)
    assert refused.value.code == "no_consent"
    assert not Appointment.objects.exists()


@pytest.mark.sqlite
def test_it_tells_a_patient_who_books_the_same_slot_twice_that_it_is_taken(
    alice: User, bob: User, clinic: Clinic, hours: AvailabilityRule
) -> None:
    """Both the doctor's and the patient's time overlap: the doctor's comes
    first, on PostgreSQL (the constraints) as on SQLite (the check)."""
    book(alice, bob, clinic)
    with pytest.raises(BookingError) as refused:
        book(alice, bob, clinic)
    assert refused.value.code == "slot_taken"
    assert Appointment.objects.count() == 1


@pytest.mark.sqlite
def test_it_audits_a_booking_with_the_bookers_role(
    alice: User, bob: User, clinic: Clinic, hours: AvailabilityRule
) -> None:
    """The booking reads the booker's memberships with everything else; the
    event says what ``user_role_label`` says: Alice also works as a doctor
    elsewhere (an admin membership of a closed clinic does not count)."""
    from apps.clinics.models import Role
    from apps.clinics.selectors import user_role_label

    Membership.objects.create(user=alice, clinic=ClinicFactory(), role=Role.DOCTOR)
    Membership.objects.create(user=alice, clinic=ClinicFactory(is_active=False), role=Role.ADMIN)
    # A new object, as in a request: the fixture's knows her roles from before.
    appointment = book(User.objects.get(pk=alice.pk), bob, clinic)
    event = AuditEvent.objects.get(object_type="appointment", object_id=str(appointment.pk))
    assert event.role == user_role_label(user=User.objects.get(pk=alice.pk)) == "doctor"


def test_it_needs_the_doctor_to_consult_at_the_clinic(alice: User, bob: User, hours: AvailabilityRule) -> None:
    with pytest.raises(BookingError) as refused:
        book(alice, bob, ClinicFactory())
    assert refused.value.code == "not_here"


@pytest.mark.parametrize("change", [{"is_active": False}, {"role": "admin"}])
def test_it_refuses_a_doctor_who_left_the_clinic_but_still_has_hours_there(
    alice: User, bob: User, clinic: Clinic, hours: AvailabilityRule, change: dict[str, object]
) -> None:
    Membership.objects.filter(user=bob, clinic=clinic).update(**change)
    with pytest.raises(BookingError) as refused:
        book(alice, bob, clinic)
    assert refused.value.code == "not_here"
    assert not Appointment.objects.exists()


def test_it_refuses_a_time_a_practising_doctor_without_hours_does_not_offer(
    alice: User, bob: User, clinic: Clinic
) -> None:
    with pytest.raises(BookingError) as refused:
        book(alice, bob, clinic)
    assert refused.value.code == "not_offered"


def test_the_database_refuses_overlaps_on_postgresql(
    alice: User, bob: User, clinic: Clinic, hours: AvailabilityRule
) -> None:
    """Even code that skips the services can't double-book a doctor."""
    from django.db import IntegrityError, transaction

    from tests.services import require_postgres

    require_postgres()
    first = book(alice, bob, clinic)
    other = PatientFactory()
    with pytest.raises(IntegrityError, match="appointment_doctor_no_overlap"), transaction.atomic():
        Appointment.objects.create(
            patient=other,
            doctor=bob,
            clinic=clinic,
            starts_at=first.starts_at + timedelta(minutes=15),
            ends_at=first.ends_at + timedelta(minutes=15),
            mode="video",
            booked_by=other,
        )
    # A cancelled appointment frees its time.
    Appointment.objects.filter(pk=first.pk).update(status="cancelled")
    Appointment.objects.create(
        patient=other,
        doctor=bob,
        clinic=clinic,
        starts_at=first.starts_at,
        ends_at=first.ends_at,
        mode="video",
        booked_by=other,
    )


def test_a_doctor_sees_the_record_of_a_patient_they_have_an_appointment_with(
    alice: User, bob: User, clinic: Clinic, hours: AvailabilityRule
) -> None:
    from django.http import Http404

    from apps.accounts.selectors import patient_get_for_user
    from apps.scheduling.services import appointment_cancel

    with pytest.raises(Http404):
        patient_get_for_user(user=bob, patient_id=alice.pk)
    appointment = book(alice, bob, clinic)
    assert patient_get_for_user(user=bob, patient_id=alice.pk) == alice
    appointment_cancel(appointment=appointment, by=alice, now=NOW)
    with pytest.raises(Http404):
        patient_get_for_user(user=bob, patient_id=alice.pk)


def test_only_the_patient_the_doctor_and_the_clinics_admins_see_an_appointment(
    alice: User, bob: User, carol: User, mallory: User, clinic: Clinic, hours: AvailabilityRule
) -> None:
    from django.http import Http404

    from apps.scheduling.selectors import appointment_get_for_user
    from tests.factories import make_clinic_admin

    appointment = book(alice, bob, clinic)
    for user in (alice, bob, carol):
        assert appointment_get_for_user(user=user, appointment_id=appointment.pk) == appointment
    other_admin = make_clinic_admin(clinic=ClinicFactory())
    for user in (mallory, other_admin):
        with pytest.raises(Http404):
            appointment_get_for_user(user=user, appointment_id=appointment.pk)
