"""Care teams: a doctor who sees the patient (or the clinic's admin) adds a
doctor of the same clinic, who then sees the record; removing ends it; both
audited; anyone else is refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.accounts.selectors import patient_can_be_seen_by
from apps.audit.models import AuditEvent
from apps.care.models import CareTeamMembership
from apps.care.services import CareRefused, care_team_add, care_team_remove
from apps.clinics.models import Clinic
from tests.care.helpers import appointment_between
from tests.factories import make_doctor

Login = Callable[[User], Client]
pytestmark = pytest.mark.sqlite


@pytest.fixture
def booked(alice: User, bob: User, clinic: Clinic) -> None:
    appointment_between(patient=alice, doctor=bob, clinic=clinic, days=2)


def test_it_lets_bob_add_a_colleague_who_then_sees_the_record(
    alice: User, bob: User, dave: User, clinic: Clinic, booked: None
) -> None:
    assert not patient_can_be_seen_by(user=dave, patient=alice)
    membership = care_team_add(patient=alice, doctor=dave, clinic=clinic, by=bob)
    assert patient_can_be_seen_by(user=dave, patient=alice)
    event = AuditEvent.objects.get(object_type="care_team_membership", action="create")
    assert (event.actor, event.patient, event.clinic_id) == (bob, alice, clinic.pk)
    care_team_remove(membership=membership, by=bob)
    assert not patient_can_be_seen_by(user=dave, patient=alice)
    assert AuditEvent.objects.filter(object_type="care_team_membership", action="update").count() == 1


def test_it_lets_the_clinic_admin_manage_the_team_of_a_patient_of_the_clinic(
    alice: User, dave: User, carol: User, clinic: Clinic, booked: None
) -> None:
    membership = care_team_add(patient=alice, doctor=dave, clinic=clinic, by=carol)
    assert membership.added_by == carol
    care_team_remove(membership=membership, by=carol)


def test_it_refuses_people_without_a_relation(
    alice: User, bob: User, dave: User, erin: User, carol: User, mallory: User, clinic: Clinic
) -> None:
    # No appointment yet: neither Bob nor Carol has anything to do with Alice.
    for someone in (bob, dave, erin, carol, mallory, alice):
        with pytest.raises(CareRefused):
            care_team_add(patient=alice, doctor=dave, clinic=clinic, by=someone)
    assert not CareTeamMembership.objects.exists()


def test_it_refuses_a_doctor_of_another_clinic_and_duplicates(
    alice: User, bob: User, dave: User, erin: User, clinic: Clinic, other_clinic: Clinic, booked: None
) -> None:
    with pytest.raises(CareRefused):
        care_team_add(patient=alice, doctor=erin, clinic=clinic, by=bob)
    with pytest.raises(CareRefused):
        care_team_add(patient=alice, doctor=erin, clinic=other_clinic, by=bob)
    care_team_add(patient=alice, doctor=dave, clinic=clinic, by=bob)
    with pytest.raises(CareRefused, match="duplicate"):
        care_team_add(patient=alice, doctor=dave, clinic=clinic, by=bob)


def test_the_doctor_may_leave_but_others_may_not_remove_them(
    alice: User, bob: User, dave: User, erin: User, clinic: Clinic, booked: None
) -> None:
    membership = care_team_add(patient=alice, doctor=dave, clinic=clinic, by=bob)
    with pytest.raises(CareRefused):
        care_team_remove(membership=membership, by=erin)
    care_team_remove(membership=membership, by=dave)
    assert CareTeamMembership.objects.get().ended_by == dave


def test_the_page_adds_and_removes(
    login: Login, alice: User, bob: User, dave: User, clinic: Clinic, booked: None
) -> None:
    client = login(bob)
    url = reverse("care:care_team", args=[alice.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"clinic": clinic.pk, "doctor": dave.pk})
    assert response.status_code == 302
    membership = CareTeamMembership.objects.get(ended_at__isnull=True)
    assert "Dave" in client.get(url).content.decode()
    response = client.post(reverse("care:care_team_remove", args=[membership.pk]))
    assert response.status_code == 302
    assert not CareTeamMembership.objects.filter(ended_at__isnull=True).exists()


def test_the_page_refuses_a_doctor_of_another_clinic_in_the_form(
    login: Login, alice: User, bob: User, erin: User, clinic: Clinic, booked: None
) -> None:
    response = login(bob).post(reverse("care:care_team", args=[alice.pk]), {"clinic": clinic.pk, "doctor": erin.pk})
    assert response.status_code == 200
    assert not CareTeamMembership.objects.exists()


@pytest.mark.parametrize("who", ["alice", "dave", "erin", "mallory"])
def test_the_pages_are_not_found_for_anyone_without_a_right(
    login: Login, request: pytest.FixtureRequest, who: str, alice: User, bob: User, dave: User, clinic: Clinic
) -> None:
    membership = CareTeamMembership.objects.create(patient=alice, doctor=bob, clinic=clinic, added_by=bob)
    client = login(request.getfixturevalue(who))
    team_url = reverse("care:care_team", args=[alice.pk])
    assert client.get(team_url).status_code == 404
    assert client.post(team_url, {"clinic": clinic.pk, "doctor": dave.pk}).status_code == 404
    assert client.post(reverse("care:care_team_remove", args=[membership.pk])).status_code == 404
    assert client.get(reverse("care:care_team", args=[999999])).status_code == 404
    assert CareTeamMembership.objects.filter(ended_at__isnull=True).count() == 1


def test_the_clinic_admin_sees_the_team_only_of_the_clinics_patients(
    login: Login, alice: User, carol: User, clinic: Clinic
) -> None:
    client = login(carol)
    assert client.get(reverse("care:care_team", args=[alice.pk])).status_code == 404
    appointment_between(patient=alice, doctor=make_doctor(clinic=clinic), clinic=clinic)
    assert client.get(reverse("care:care_team", args=[alice.pk])).status_code == 200


def test_the_pages_send_visitors_to_sign_in(client: Client, alice: User) -> None:
    response = client.get(reverse("care:care_team", args=[alice.pk]))
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


def test_break_glass_does_not_let_a_doctor_change_the_care_team(
    alice: User, dave: User, bob: User, clinic: Clinic
) -> None:
    from apps.care.services import break_glass_open

    break_glass_open(doctor=dave, patient=alice, reason="Collapsed at the market")
    with pytest.raises(CareRefused):
        care_team_add(patient=alice, doctor=bob, clinic=clinic, by=dave)
