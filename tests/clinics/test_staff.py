from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.core import mail
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.clinics.models import Clinic, Invitation, Membership
from tests.conftest import sms_sent
from tests.factories import ClinicFactory, make_clinic_admin


def test_it_shows_the_clinic_admin_their_staff(login: Callable[[User], Client], carol: User, bob: User) -> None:
    response = login(carol).get(reverse("clinics:staff", args=[bob.memberships.get().clinic_id]))
    assert response.status_code == 200
    assert "Bob" in response.content.decode()


def test_it_hides_the_staff_page_from_mallory(login: Callable[[User], Client], mallory: User, clinic: Clinic) -> None:
    assert login(mallory).get(reverse("clinics:staff", args=[clinic.pk])).status_code == 404


def test_it_hides_the_staff_page_from_a_doctor(login: Callable[[User], Client], bob: User, clinic: Clinic) -> None:
    assert login(bob).get(reverse("clinics:staff", args=[clinic.pk])).status_code == 404


def test_it_hides_another_clinics_staff_page(login: Callable[[User], Client], carol: User) -> None:
    other = ClinicFactory()
    make_clinic_admin(clinic=other)
    assert login(carol).get(reverse("clinics:staff", args=[other.pk])).status_code == 404


def test_it_invites_a_doctor_by_email(
    login: Callable[[User], Client], carol: User, clinic: Clinic, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = login(carol).post(
            reverse("clinics:staff", args=[clinic.pk]),
            {"full_name": "Dr Dan", "role": "doctor", "email": "dan@example.org", "phone": ""},
        )
    assert response.status_code == 302
    invitation = Invitation.objects.get()
    assert invitation.email == "dan@example.org"
    assert len(mail.outbox) == 1
    assert "/i/" in mail.outbox[0].body


def test_it_invites_an_admin_by_phone(
    login: Callable[[User], Client], carol: User, clinic: Clinic, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        login(carol).post(
            reverse("clinics:staff", args=[clinic.pk]),
            {"full_name": "Eve", "role": "admin", "email": "", "phone": "13900139001"},
        )
    assert Invitation.objects.get().phone == "+8613900139001"
    assert "/i/" in sms_sent("+8613900139001")[-1].body


def test_it_needs_an_address_for_the_invitation(login: Callable[[User], Client], carol: User, clinic: Clinic) -> None:
    response = login(carol).post(
        reverse("clinics:staff", args=[clinic.pk]), {"full_name": "Nobody", "role": "doctor", "email": "", "phone": ""}
    )
    assert response.status_code == 200
    assert "Enter an email address or a mobile phone number" in response.content.decode()
    assert not Invitation.objects.exists()


def _invite(client: Client, clinic: Clinic, email: str) -> str:
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        client.post(
            reverse("clinics:staff", args=[clinic.pk]), {"full_name": "Dr Dan", "role": "doctor", "email": email}
        )
    match = re.search(r"/i/[^/\s]+/", mail.outbox[-1].body)
    assert match
    return match.group(0)


def test_the_invitee_sets_up_an_account_and_is_sent_to_mfa(
    login: Callable[[User], Client], carol: User, clinic: Clinic
) -> None:
    link = _invite(login(carol), clinic, "dan@example.org")
    invitee = Client()
    page = invitee.get(link)
    assert page.status_code == 200
    response = invitee.post(
        link, {"full_name": "Dr Dan", "password1": "a-long-pass-phrase-7", "password2": "a-long-pass-phrase-7"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_activate_totp")
    dan = User.objects.get(email="dan@example.org")
    assert Membership.objects.filter(user=dan, clinic=clinic, role="doctor").exists()
    assert invitee.get("/")["Location"] == reverse("mfa_activate_totp")
    # The link is used up.
    assert Client().get(link).status_code == 404


def test_it_refuses_a_made_up_invitation_link(client: Client, db: None) -> None:
    assert client.get("/i/not-a-real-token/").status_code == 404


def test_it_refuses_a_withdrawn_invitation(login: Callable[[User], Client], carol: User, clinic: Clinic) -> None:
    client = login(carol)
    link = _invite(client, clinic, "dan@example.org")
    invitation = Invitation.objects.get()
    client.post(reverse("clinics:invitation_revoke", args=[clinic.pk, invitation.pk]))
    assert Client().get(link).status_code == 404


def test_it_refuses_the_invitation_to_another_signed_in_account(
    login: Callable[[User], Client], carol: User, clinic: Clinic, mallory: User
) -> None:
    link = _invite(login(carol), clinic, "dan@example.org")
    other = Client()
    other.force_login(mallory)
    assert other.post(link).status_code == 403
    assert not Membership.objects.filter(user=mallory).exists()


def test_mallory_cannot_withdraw_an_invitation(
    login: Callable[[User], Client], carol: User, clinic: Clinic, mallory: User
) -> None:
    _invite(login(carol), clinic, "dan@example.org")
    invitation = Invitation.objects.get()
    thief = Client()
    thief.force_login(mallory)
    assert thief.post(reverse("clinics:invitation_revoke", args=[clinic.pk, invitation.pk])).status_code == 404
    invitation.refresh_from_db()
    assert invitation.revoked_at is None
