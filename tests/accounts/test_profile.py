from __future__ import annotations

from collections.abc import Callable

from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.audit.models import AuditEvent


def _form(**overrides: str) -> dict[str, str]:
    data = {
        "prefs-full_name": "Alice Liu",
        "prefs-language": "en",
        "prefs-timezone": "Asia/Shanghai",
        "profile-date_of_birth": "1960-05-01",
        "profile-sex": "female",
        "profile-glucose_unit": "mg/dL",
        "profile-village": "Stone Bridge",
        "profile-address": "3 River Lane",
        "profile-emergency_contact_name": "Liu Wei",
        "profile-emergency_contact_phone": "139 0013 9000",
    }
    data.update(overrides)
    return data


def test_it_shows_the_patients_profile_and_audits_the_read(login: Callable[[User], Client], alice: User) -> None:
    response = login(alice).get(reverse("accounts:profile"))
    assert response.status_code == 200
    assert AuditEvent.objects.filter(actor=alice, action="view", object_type="patient_profile", patient=alice).exists()


def test_it_saves_the_profile_and_audits_the_write(login: Callable[[User], Client], alice: User) -> None:
    response = login(alice).post(reverse("accounts:profile"), _form())
    assert response.status_code == 302
    alice.refresh_from_db()
    profile = alice.patient_profile
    assert alice.full_name == "Alice Liu"
    assert profile.glucose_unit == "mg/dL"
    assert profile.emergency_contact_phone == "+8613900139000"
    assert AuditEvent.objects.filter(action="update", object_type="patient_profile", patient=alice).exists()


def test_it_refuses_a_birth_date_in_the_future_and_changes_nothing(
    login: Callable[[User], Client], alice: User
) -> None:
    response = login(alice).post(
        reverse("accounts:profile"), _form(**{"profile-date_of_birth": "2999-01-01", "prefs-full_name": "Changed"})
    )
    assert response.status_code == 200
    assert "can&#x27;t be in the future" in response.content.decode()
    alice.refresh_from_db()
    assert alice.full_name == "Alice"
    assert alice.patient_profile.date_of_birth is None


def test_it_refuses_an_unknown_time_zone(login: Callable[[User], Client], alice: User) -> None:
    response = login(alice).post(reverse("accounts:profile"), _form(**{"prefs-timezone": "Mars/Olympus"}))
    assert response.status_code == 200
    alice.refresh_from_db()
    assert alice.timezone == "Asia/Shanghai"


def test_it_applies_the_chosen_language_to_every_page(login: Callable[[User], Client], alice: User) -> None:
    client = login(alice)
    client.post(reverse("accounts:profile"), _form(**{"prefs-language": "zh-hans"}))
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    assert '<html lang="zh-hans">' in page.content.decode()


def test_it_shows_staff_only_their_account_details(login: Callable[[User], Client], bob: User) -> None:
    response = login(bob).get(reverse("accounts:profile"))
    assert response.status_code == 200
    assert response.context["profile_form"] is None


def test_it_sends_visitors_to_sign_in(client: Client, db: None) -> None:
    response = client.get(reverse("accounts:profile"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
