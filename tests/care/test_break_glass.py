"""Break-glass: a doctor with no relation to a patient opens their record
by exact phone number or patient number and a reason, for 12 hours; it is
audited with the reason, the admins of the doctor's clinic are told in the
app and see it on their clinic's page; nobody else can."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.selectors import patient_can_be_seen_by
from apps.audit.models import AuditEvent
from apps.care.models import BreakGlassAccess
from apps.care.selectors import break_glass_for_clinic, patients_of_doctor
from apps.care.services import CareRefused, break_glass_end, break_glass_open
from apps.clinics.models import Clinic
from apps.notifications.models import Notification
from tests.factories import PatientFactory, make_clinic_admin

Login = Callable[[User], Client]
pytestmark = pytest.mark.sqlite

REASON = "Brought in unconscious, needs her history"


def test_it_opens_the_record_for_twelve_hours(alice: User, dave: User) -> None:
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        access = break_glass_open(doctor=dave, patient=alice, reason=REASON)
        assert access.expires_at == now + timedelta(hours=12)
        assert patient_can_be_seen_by(user=dave, patient=alice)
        assert alice not in patients_of_doctor(doctor=dave)
    with time_machine.travel(now + timedelta(hours=11, minutes=59), tick=False):
        assert patient_can_be_seen_by(user=dave, patient=alice)
    with time_machine.travel(now + timedelta(hours=12), tick=False):
        assert not patient_can_be_seen_by(user=dave, patient=alice)


@pytest.mark.parametrize("reason", ["", "   ", "urgent", "  too   short "])
def test_it_requires_a_reason(alice: User, dave: User, reason: str) -> None:
    with pytest.raises(CareRefused, match="reason"):
        break_glass_open(doctor=dave, patient=alice, reason=reason)
    assert not BreakGlassAccess.objects.exists()
    assert not patient_can_be_seen_by(user=dave, patient=alice)


def test_it_is_for_doctors_only(alice: User, carol: User, mallory: User) -> None:
    for someone in (carol, mallory):
        with pytest.raises(CareRefused):
            break_glass_open(doctor=someone, patient=alice, reason=REASON)
    assert not BreakGlassAccess.objects.exists()


def test_it_audits_with_the_reason_and_tells_the_clinic_admins(
    alice: User, dave: User, carol: User, clinic: Clinic, other_clinic: Clinic, deliver: Callable[[], object]
) -> None:
    other_admin = make_clinic_admin(clinic=other_clinic)
    with deliver():
        access = break_glass_open(doctor=dave, patient=alice, reason=REASON)
    event = AuditEvent.objects.get(object_type="break_glass", action="create")
    assert (event.actor, event.patient, event.clinic_id, event.reason) == (dave, alice, clinic.pk, REASON)
    notices = Notification.objects.filter(template="care/break_glass")
    assert [(n.recipient, n.channel) for n in notices] == [(carol, "in_app")]
    assert not Notification.objects.filter(recipient=other_admin).exists()
    assert list(break_glass_for_clinic(clinic=clinic)) == [access]
    assert list(break_glass_for_clinic(clinic=other_clinic)) == []


def test_the_doctor_may_end_it_early(alice: User, dave: User) -> None:
    access = break_glass_open(doctor=dave, patient=alice, reason=REASON)
    break_glass_end(access=access, by=dave)
    assert not patient_can_be_seen_by(user=dave, patient=alice)


def test_the_page_finds_the_patient_by_phone_and_opens_the_chart(login: Login, alice: User, dave: User) -> None:
    client = login(dave)
    assert client.get(reverse("care:break_glass")).status_code == 200
    response = client.post(reverse("care:break_glass"), {"patient": "138 0013 8000", "reason": REASON})
    assert response.status_code == 302
    assert response["Location"] == reverse("care:chart", args=[alice.pk])
    assert BreakGlassAccess.objects.get().patient == alice


def test_the_page_finds_the_patient_by_number(login: Login, alice: User, dave: User) -> None:
    response = login(dave).post(reverse("care:break_glass"), {"patient": f"#{alice.pk}", "reason": REASON})
    assert response.status_code == 302
    assert BreakGlassAccess.objects.get().patient == alice


@pytest.mark.parametrize(
    ("patient", "reason", "error"),
    [
        ("+8613800138000", "short", "at least 10 characters"),
        ("not a number", REASON, "exact phone number"),
        ("+8613911112222", REASON, "No patient has this phone number"),
        ("999999", REASON, "No patient has this phone number"),
    ],
)
def test_the_page_explains_what_is_wrong_and_opens_nothing(
    login: Login, alice: User, dave: User, patient: str, reason: str, error: str
) -> None:
    response = login(dave).post(reverse("care:break_glass"), {"patient": patient, "reason": reason})
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not BreakGlassAccess.objects.exists()


def test_the_page_does_not_open_a_doctors_own_patient_again(
    login: Login, alice: User, bob: User, clinic: Clinic
) -> None:
    from tests.care.helpers import appointment_between

    appointment_between(patient=alice, doctor=bob, clinic=clinic)
    response = login(bob).post(reverse("care:break_glass"), {"patient": "+8613800138000", "reason": REASON})
    assert response.status_code == 302
    assert not BreakGlassAccess.objects.exists()


@pytest.mark.parametrize("who", ["alice", "carol", "mallory"])
def test_the_page_is_for_doctors_only(login: Login, request: pytest.FixtureRequest, who: str, alice: User) -> None:
    client = login(request.getfixturevalue(who))
    assert client.get(reverse("care:break_glass")).status_code == 404
    assert client.post(reverse("care:break_glass"), {"patient": "+8613800138000", "reason": REASON}).status_code == 404
    assert not BreakGlassAccess.objects.exists()


def test_the_clinic_admin_reviews_the_accesses_of_the_clinics_doctors(
    login: Login, alice: User, dave: User, carol: User, clinic: Clinic
) -> None:
    break_glass_open(doctor=dave, patient=alice, reason=REASON)
    page = login(carol).get(reverse("care:break_glass_clinic", args=[clinic.pk])).content.decode()
    assert "Dave" in page
    assert REASON in page
    assert "Alice" in page
    assert AuditEvent.objects.filter(object_type="break_glass", action="view", actor=carol).count() == 1


def test_the_review_pages_through_the_accesses(
    login: Login, alice: User, dave: User, carol: User, clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("apps.care.views.BREAK_GLASS_PAGE", 1)
    break_glass_open(doctor=dave, patient=alice, reason=REASON)
    break_glass_open(doctor=dave, patient=PatientFactory(full_name="Zoe"), reason=REASON)
    url = reverse("care:break_glass_clinic", args=[clinic.pk])
    first = login(carol).get(url).content.decode()
    assert "Page 1 of 2" in first and 'href="?page=2"' in first
    assert 'href="?page=1"' in login(carol).get(url, {"page": 2}).content.decode()


@pytest.mark.parametrize("who", ["alice", "bob", "dave", "mallory"])
def test_the_review_is_not_found_for_anyone_but_the_clinics_admins(
    login: Login, request: pytest.FixtureRequest, who: str, clinic: Clinic, other_clinic: Clinic
) -> None:
    client = login(request.getfixturevalue(who))
    assert client.get(reverse("care:break_glass_clinic", args=[clinic.pk])).status_code == 404


def test_another_clinics_admin_cannot_review(login: Login, clinic: Clinic, other_clinic: Clinic) -> None:
    other_admin = make_clinic_admin(clinic=other_clinic)
    assert login(other_admin).get(reverse("care:break_glass_clinic", args=[clinic.pk])).status_code == 404


def test_visitors_are_sent_to_sign_in(client: Client, clinic: Clinic) -> None:
    for url in (reverse("care:break_glass"), reverse("care:break_glass_clinic", args=[clinic.pk])):
        response = client.get(url)
        assert response.status_code == 302
        assert reverse("account_login") in response["Location"]


def test_only_the_doctor_may_end_their_access(login: Login, alice: User, dave: User, bob: User) -> None:
    access = break_glass_open(doctor=dave, patient=alice, reason=REASON)
    assert login(bob).post(reverse("care:break_glass_end", args=[access.pk])).status_code == 404
    assert patient_can_be_seen_by(user=dave, patient=alice)
    assert login(dave).post(reverse("care:break_glass_end", args=[access.pk])).status_code == 302
    assert not patient_can_be_seen_by(user=dave, patient=alice)
