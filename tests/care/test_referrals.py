"""Referrals: Bob refers Alice to Erin (another clinic) or to cardiology;
the receiver sees it and Alice's record while it is open or booked; Alice
is invited to book (in the app and by SMS, in her language); booking with
the receiver books it, cancelling that appointment opens it again; the
receiver completes or declines it (with a reason), Bob may withdraw it;
every change is audited."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.accounts.models import User
from apps.accounts.selectors import patient_can_be_seen_by
from apps.audit.models import AuditEvent
from apps.care.models import Referral, ReferralStatus, ReferralUrgency
from apps.care.selectors import patient_access_reason, referrals_for_doctor, referrals_of_patient
from apps.care.services import (
    CareRefused,
    referral_accept,
    referral_booked,
    referral_cancel,
    referral_complete,
    referral_create,
    referral_decline,
)
from apps.clinics.models import Clinic, Specialty
from apps.notifications.models import Notification
from apps.notifications.rendering import notification_render
from apps.scheduling.models import AppointmentStatus
from tests.care.helpers import appointment_between
from tests.factories import ClinicFactory, PatientFactory, make_doctor

Login = Callable[[User], Client]
pytestmark = pytest.mark.sqlite

REASON = "Murmur heard, please assess"


@pytest.fixture
def booked(alice: User, bob: User, clinic: Clinic) -> None:
    appointment_between(patient=alice, doctor=bob, clinic=clinic, days=-3, status=AppointmentStatus.COMPLETED)


def _refer_to_erin(alice: User, bob: User, erin: User, **kwargs: str) -> Referral:
    return referral_create(patient=alice, from_doctor=bob, to_doctor=erin, reason=REASON, **kwargs)


def _statuses(referral: Referral) -> str:
    referral.refresh_from_db()
    return referral.status


def test_the_receiver_sees_it_and_the_record_while_it_is_open_or_booked(
    alice: User, bob: User, erin: User, other_clinic: Clinic, booked: None
) -> None:
    referral = _refer_to_erin(alice, bob, erin, urgency=ReferralUrgency.URGENT)
    assert list(referrals_for_doctor(doctor=erin)) == [referral]
    assert referral.to_clinic == other_clinic
    assert patient_can_be_seen_by(user=erin, patient=alice)
    appointment = appointment_between(patient=alice, doctor=erin, clinic=other_clinic, days=5)
    assert _statuses(referral) == ReferralStatus.BOOKED
    assert referral.appointment == appointment
    assert patient_can_be_seen_by(user=erin, patient=alice)
    referral_complete(referral=referral, by=erin)
    assert _statuses(referral) == ReferralStatus.COMPLETED
    # Erin keeps seeing Alice, now through their appointment.
    assert patient_access_reason(user=erin, patient=alice).code == "appointment"  # type: ignore[union-attr]
    reasons = list(AuditEvent.objects.filter(object_type="referral").values_list("action", "reason"))
    assert reasons == [("create", ""), ("update", "booked"), ("update", "completed")]


def test_the_receiver_loses_access_when_it_closes_without_an_appointment(
    alice: User, bob: User, erin: User, booked: None
) -> None:
    referral = _refer_to_erin(alice, bob, erin)
    referral_decline(referral=referral, by=erin, reason="Not my field")
    assert _statuses(referral) == ReferralStatus.DECLINED
    assert referral.decline_reason == "Not my field"
    assert not patient_can_be_seen_by(user=erin, patient=alice)
    assert list(referrals_for_doctor(doctor=erin)) == []


def test_it_invites_the_patient_in_the_app_and_by_sms_and_tells_the_receiver(
    alice: User, bob: User, erin: User, booked: None
) -> None:
    referral = _refer_to_erin(alice, bob, erin)
    invites = Notification.objects.filter(template="care/referral_invite", recipient=alice)
    assert sorted(invites.values_list("channel", flat=True)) == ["in_app", "sms"]
    sms = notification_render(invites.get(channel="sms"))
    assert "Bob referred you to Erin" in sms.text
    assert reverse("care:referral_detail", args=[referral.pk]) in sms.text
    notice = Notification.objects.get(template="care/referral_notice", recipient=erin)
    assert notice.channel == "in_app"
    assert "Alice" in notification_render(notice).subject


def test_it_writes_the_invitation_in_the_patients_language(
    alice: User, bob: User, cardiology: Specialty, booked: None
) -> None:
    alice.language = "zh-hans"
    alice.save(update_fields=["language"])
    referral_create(patient=alice, from_doctor=bob, to_specialty=cardiology, reason=REASON)
    sms = Notification.objects.get(template="care/referral_invite", channel="sms")
    assert sms.language == "zh-hans"
    assert "心内科" in notification_render(sms).text
    assert f"?specialty={cardiology.pk}" not in notification_render(sms).text  # the link is the referral page


def test_a_specialty_referral_is_taken_by_one_doctor_of_the_specialty(
    alice: User, bob: User, dave: User, erin: User, cardiology: Specialty, other_clinic: Clinic, booked: None
) -> None:
    referral = referral_create(patient=alice, from_doctor=bob, to_specialty=cardiology, reason=REASON)
    assert list(referrals_for_doctor(doctor=erin)) == [referral]
    assert list(referrals_for_doctor(doctor=dave)) == []
    assert Notification.objects.filter(template="care/referral_notice", recipient=erin).exists()
    assert not patient_can_be_seen_by(user=erin, patient=alice)
    with pytest.raises(CareRefused):
        referral_accept(referral=referral, by=dave)
    referral_accept(referral=referral, by=erin)
    referral.refresh_from_db()
    assert (referral.to_doctor, referral.to_clinic, referral.status) == (erin, other_clinic, ReferralStatus.OPEN)
    assert patient_can_be_seen_by(user=erin, patient=alice)
    other_cardiologist = make_doctor(clinic=other_clinic)
    other_cardiologist.doctor_profile.specialties.add(cardiology)
    with pytest.raises(CareRefused):
        referral_accept(referral=referral, by=other_cardiologist)
    assert Notification.objects.filter(template="care/referral_invite", channel="sms").count() == 2


def test_booking_a_doctor_of_the_specialty_books_an_unaccepted_referral(
    alice: User, bob: User, erin: User, cardiology: Specialty, other_clinic: Clinic, booked: None
) -> None:
    referral = referral_create(patient=alice, from_doctor=bob, to_specialty=cardiology, reason=REASON)
    appointment = appointment_between(patient=alice, doctor=erin, clinic=other_clinic, days=4)
    referral.refresh_from_db()
    assert (referral.status, referral.to_doctor, referral.appointment) == (ReferralStatus.BOOKED, erin, appointment)


def test_booking_another_doctor_leaves_it_open(
    alice: User, bob: User, dave: User, erin: User, clinic: Clinic, booked: None
) -> None:
    referral = _refer_to_erin(alice, bob, erin)
    appointment_between(patient=alice, doctor=dave, clinic=clinic, days=4)
    assert _statuses(referral) == ReferralStatus.OPEN


def test_cancelling_the_booked_appointment_opens_it_again(
    alice: User, bob: User, erin: User, other_clinic: Clinic, booked: None
) -> None:
    referral = _refer_to_erin(alice, bob, erin)
    appointment = appointment_between(patient=alice, doctor=erin, clinic=other_clinic, days=4)
    appointment.status = AppointmentStatus.CANCELLED
    appointment.cancelled_by = alice
    appointment.save(update_fields=["status", "cancelled_by"])
    referral.refresh_from_db()
    assert (referral.status, referral.appointment) == (ReferralStatus.OPEN, None)


def test_referral_booked_refuses_the_wrong_patient_or_doctor(
    alice: User, bob: User, dave: User, erin: User, mallory: User, clinic: Clinic, booked: None
) -> None:
    referral = _refer_to_erin(alice, bob, erin)
    with pytest.raises(CareRefused):
        referral_booked(referral=referral, appointment=appointment_between(patient=alice, doctor=dave, clinic=clinic))
    with pytest.raises(CareRefused):
        referral_booked(referral=referral, appointment=appointment_between(patient=mallory, doctor=erin, clinic=clinic))


def test_only_the_receiver_declines_and_only_with_a_reason(
    alice: User, bob: User, dave: User, erin: User, booked: None, deliver: Callable[[], object]
) -> None:
    referral = _refer_to_erin(alice, bob, erin)
    for someone in (bob, dave, alice):
        with pytest.raises(CareRefused):
            referral_decline(referral=referral, by=someone, reason="No")
    with pytest.raises(CareRefused):
        referral_decline(referral=referral, by=erin, reason="  ")
    assert _statuses(referral) == ReferralStatus.OPEN
    with deliver():
        referral_decline(referral=referral, by=erin, reason="Fully booked this month")
    assert Notification.objects.filter(template="care/referral_notice", recipient=bob).exists()
    with pytest.raises(CareRefused):
        referral_complete(referral=referral, by=erin)


def test_only_the_referrer_withdraws(alice: User, bob: User, erin: User, booked: None) -> None:
    referral = _refer_to_erin(alice, bob, erin)
    with pytest.raises(CareRefused):
        referral_cancel(referral=referral, by=erin)
    referral_cancel(referral=referral, by=bob)
    assert _statuses(referral) == ReferralStatus.CANCELLED
    assert not patient_can_be_seen_by(user=erin, patient=alice)


def test_it_refuses_a_referral_from_a_doctor_without_access(
    alice: User, bob: User, dave: User, erin: User, carol: User, mallory: User
) -> None:
    for someone in (dave, carol, mallory, alice):
        with pytest.raises(CareRefused):
            referral_create(patient=alice, from_doctor=someone, to_doctor=erin, reason=REASON)
    assert not Referral.objects.exists()


@pytest.mark.usefixtures("booked")
@pytest.mark.parametrize(
    ("to", "reason", "urgency"),
    [("nobody", REASON, "routine"), ("self", REASON, "routine"), ("erin", "  ", "routine"), ("erin", REASON, "now")],
)
def test_it_refuses_bad_input(alice: User, bob: User, erin: User, to: str, reason: str, urgency: str) -> None:
    to_doctor = {"nobody": None, "self": bob, "erin": erin}[to]
    with pytest.raises(CareRefused):
        referral_create(patient=alice, from_doctor=bob, to_doctor=to_doctor, reason=reason, urgency=urgency)
    assert not Referral.objects.exists()


# --- Pages ---------------------------------------------------------------------


def test_bob_refers_alice_from_the_form(login: Login, alice: User, bob: User, erin: User, booked: None) -> None:
    client = login(bob)
    url = reverse("care:referral_new", args=[alice.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"to_doctor": erin.pk, "urgency": "soon", "reason": REASON})
    referral = Referral.objects.get()
    assert response["Location"] == reverse("care:referral_detail", args=[referral.pk])
    assert (referral.to_doctor, referral.urgency, referral.from_doctor) == (erin, "soon", bob)


def test_the_form_explains_a_missing_receiver(login: Login, alice: User, bob: User, booked: None) -> None:
    response = login(bob).post(reverse("care:referral_new", args=[alice.pk]), {"urgency": "routine", "reason": "x"})
    assert response.status_code == 200
    assert "Choose a doctor or a specialty." in response.content.decode()
    assert not Referral.objects.exists()


@pytest.mark.parametrize("who", ["alice", "dave", "erin", "carol", "mallory"])
def test_the_form_is_not_found_without_access(
    login: Login, request: pytest.FixtureRequest, who: str, alice: User, erin: User, booked: None
) -> None:
    client = login(request.getfixturevalue(who))
    url = reverse("care:referral_new", args=[alice.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"to_doctor": erin.pk, "urgency": "routine", "reason": REASON}).status_code == 404
    assert not Referral.objects.exists()


@pytest.mark.parametrize(
    ("who", "status"), [("alice", 200), ("bob", 200), ("erin", 200), ("dave", 404), ("carol", 404), ("mallory", 404)]
)
def test_the_detail_page_matrix(
    login: Login,
    request: pytest.FixtureRequest,
    who: str,
    status: int,
    alice: User,
    bob: User,
    erin: User,
    booked: None,
) -> None:
    referral = _refer_to_erin(alice, bob, erin)
    assert (
        login(request.getfixturevalue(who)).get(reverse("care:referral_detail", args=[referral.pk])).status_code
        == status
    )


@pytest.mark.parametrize("who", ["alice", "dave", "carol", "mallory"])
@pytest.mark.parametrize("action", ["referral_accept", "referral_decline", "referral_complete", "referral_cancel"])
def test_the_actions_change_nothing_for_others(
    login: Login,
    request: pytest.FixtureRequest,
    who: str,
    action: str,
    alice: User,
    bob: User,
    erin: User,
    booked: None,
) -> None:
    referral = _refer_to_erin(alice, bob, erin)
    response = login(request.getfixturevalue(who)).post(reverse(f"care:{action}", args=[referral.pk]), {"reason": "x"})
    assert response.status_code in (302, 404)
    if who != "alice":
        assert response.status_code == 404
    assert _statuses(referral) == ReferralStatus.OPEN


def test_visitors_are_sent_to_sign_in(client: Client, alice: User, bob: User, erin: User, booked: None) -> None:
    referral = _refer_to_erin(alice, bob, erin)
    for url in (
        reverse("care:referral_detail", args=[referral.pk]),
        reverse("care:referral_new", args=[alice.pk]),
        reverse("care:referrals"),
        reverse("care:my_referrals"),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert reverse("account_login") in response["Location"]
    response = client.post(reverse("care:referral_decline", args=[referral.pk]), {"reason": "x"})
    assert response.status_code == 302
    assert _statuses(referral) == ReferralStatus.OPEN


def test_the_receiver_acts_from_the_detail_page(login: Login, alice: User, bob: User, erin: User, booked: None) -> None:
    referral = _refer_to_erin(alice, bob, erin)
    client = login(erin)
    page = client.get(reverse("care:referral_detail", args=[referral.pk])).content.decode()
    assert "Decline the referral" in page
    assert reverse("care:chart", args=[alice.pk]) in page
    client.post(reverse("care:referral_decline", args=[referral.pk]), {"reason": ""})
    assert _statuses(referral) == ReferralStatus.OPEN
    client.post(reverse("care:referral_decline", args=[referral.pk]), {"reason": "Please see a neurologist"})
    assert _statuses(referral) == ReferralStatus.DECLINED


def test_a_cardiologist_accepts_from_the_page(
    login: Login, alice: User, bob: User, erin: User, cardiology: Specialty, booked: None
) -> None:
    referral = referral_create(patient=alice, from_doctor=bob, to_specialty=cardiology, reason=REASON)
    client = login(erin)
    assert "Accept this referral" in client.get(reverse("care:referral_detail", args=[referral.pk])).content.decode()
    client.post(reverse("care:referral_accept", args=[referral.pk]))
    referral.refresh_from_db()
    assert referral.to_doctor == erin


def test_alice_sees_who_referred_her_and_can_book(
    login: Login, alice: User, bob: User, erin: User, other_clinic: Clinic, mallory: User, booked: None
) -> None:
    referral = _refer_to_erin(alice, bob, erin)
    page = login(alice).get(reverse("care:my_referrals")).content.decode()
    assert "Bob referred you to" in page
    booking = reverse("scheduling:doctor_week", args=[erin.pk, other_clinic.pk])
    assert booking in page
    assert booking in login(alice).get(reverse("care:referral_detail", args=[referral.pk])).content.decode()
    assert "Bob" not in login(mallory).get(reverse("care:my_referrals")).content.decode()


def test_the_doctors_referral_list(login: Login, alice: User, bob: User, erin: User, booked: None) -> None:
    _refer_to_erin(alice, bob, erin)
    assert "Alice" in login(erin).get(reverse("care:referrals")).content.decode()
    assert "Alice" in login(bob).get(reverse("care:referrals")).content.decode()


@pytest.mark.parametrize(
    ("who", "name"), [("alice", "care:referrals"), ("carol", "care:referrals"), ("bob", "care:my_referrals")]
)
def test_the_lists_are_for_their_role(login: Login, request: pytest.FixtureRequest, who: str, name: str) -> None:
    assert login(request.getfixturevalue(who)).get(reverse(name)).status_code == 404


def test_the_patients_referrals_are_newest_first(alice: User, bob: User, erin: User, booked: None) -> None:
    first = _refer_to_erin(alice, bob, erin)
    referral_cancel(referral=first, by=bob)
    second = _refer_to_erin(alice, bob, erin)
    assert list(referrals_of_patient(patient=alice)) == [second, first]


def _referrals_to(doctor: User, specialty: Specialty, count: int) -> None:
    for _ in range(count):
        patient = PatientFactory()
        referrer = make_doctor(clinic=ClinicFactory())
        Referral.objects.create(patient=patient, from_doctor=referrer, to_doctor=doctor, reason=REASON)
        Referral.objects.create(patient=patient, from_doctor=referrer, to_specialty=specialty, reason=REASON)


def test_it_reads_a_doctors_referrals_in_one_query_whatever_their_number(erin: User, cardiology: Specialty) -> None:
    _referrals_to(erin, cardiology, 2)
    with CaptureQueriesContext(connection) as few:
        rows = [
            (r.patient.full_name, r.from_doctor.full_name, r.to_specialty) for r in referrals_for_doctor(doctor=erin)
        ]
    assert len(rows) == 4
    _referrals_to(erin, cardiology, 8)
    with CaptureQueriesContext(connection) as more:
        rows = [
            (r.patient.full_name, r.from_doctor.full_name, r.to_specialty) for r in referrals_for_doctor(doctor=erin)
        ]
    assert len(rows) == 20
    assert len(few) == len(more) == 1
