from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.clinics.models import Clinic
from tests.factories import make_clinic_admin, make_doctor


@pytest.mark.parametrize("path", ["/", "/me/", "/admin/"])
def test_it_sends_a_doctor_without_mfa_to_enrolment(login: Callable[[User], Client], clinic: Clinic, path: str) -> None:
    doctor = make_doctor(clinic=clinic, mfa=False)
    response = login(doctor).get(path)
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_activate_totp")


def test_it_sends_a_clinic_admin_without_mfa_to_enrolment(login: Callable[[User], Client], clinic: Clinic) -> None:
    admin = make_clinic_admin(clinic=clinic, mfa=False)
    response = login(admin).get(reverse("clinics:staff", args=[clinic.pk]))
    assert response["Location"] == reverse("mfa_activate_totp")


def test_it_lets_an_enrolled_doctor_in(login: Callable[[User], Client], bob: User) -> None:
    response = login(bob).get("/")
    assert response.status_code == 200
    assert "Dashboard" in response.content.decode()


def test_it_does_not_ask_patients_for_mfa(login: Callable[[User], Client], alice: User) -> None:
    assert login(alice).get("/").status_code == 200


def test_it_opens_enrolment_after_the_password_is_confirmed(client: Client, clinic: Clinic) -> None:
    from tests.factories import PASSWORD

    doctor = make_doctor(clinic=clinic, mfa=False)
    response = client.post(reverse("account_login"), {"login": doctor.email, "password": PASSWORD}, follow=True)
    # allauth asks for the password once more before adding an authenticator.
    assert response.redirect_chain[-1][0].startswith(reverse("account_reauthenticate"))
    response = client.post(response.redirect_chain[-1][0], {"password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("mfa_activate_totp")
    assert "Authenticator secret" in response.content.decode()


def test_it_asks_for_the_totp_code_at_sign_in(client: Client, bob: User) -> None:
    from tests.factories import PASSWORD

    response = client.post(reverse("account_login"), {"login": bob.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_authenticate")
    assert "_auth_user_id" not in client.session


def test_it_asks_django_staff_users_for_mfa_too(login: Callable[[User], Client], db: None) -> None:
    from tests.factories import UserFactory

    staff = UserFactory(is_staff=True)
    assert login(staff).get("/")["Location"] == reverse("mfa_activate_totp")


def test_it_stores_totp_secrets_encrypted(bob: User) -> None:
    from allauth.mfa.models import Authenticator
    from allauth.mfa.utils import decrypt

    from tests.factories import TOTP_SECRET

    stored = Authenticator.objects.get(user=bob, type="totp").data["secret"]
    assert TOTP_SECRET not in stored
    assert decrypt(stored) == TOTP_SECRET
