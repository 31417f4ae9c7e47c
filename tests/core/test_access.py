"""Mallory, and visitors, are refused every page that isn't theirs."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.clinics.models import Clinic

PRIVATE_PAGES = ["accounts:profile", "accounts:consent", "clinics:staff"]


def _url(name: str, clinic: Clinic) -> str:
    return reverse(name, args=[clinic.pk]) if name.startswith("clinics:") else reverse(name)


@pytest.mark.parametrize("name", PRIVATE_PAGES)
def test_visitors_are_sent_to_sign_in(client: Client, clinic: Clinic, name: str) -> None:
    response = client.get(_url(name, clinic))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_mallory_is_refused_the_clinic_pages(
    login: Callable[[User], Client], mallory: User, clinic: Clinic, carol: User
) -> None:
    client = login(mallory)
    assert client.get(reverse("clinics:staff", args=[clinic.pk])).status_code == 404
    assert (
        client.post(
            reverse("clinics:staff", args=[clinic.pk]), {"full_name": "x", "role": "admin", "email": "m@example.org"}
        ).status_code
        == 404
    )


def test_mallory_is_refused_the_site_admin(login: Callable[[User], Client], mallory: User) -> None:
    response = login(mallory).get("/admin/")
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_mallory_sees_only_her_own_profile(login: Callable[[User], Client], mallory: User, alice: User) -> None:
    page = login(mallory).get(reverse("accounts:profile")).content.decode()
    assert "Mallory" in page
    assert "Alice" not in page


def test_mallory_cannot_read_alices_profile_through_the_selector(mallory: User, alice: User) -> None:
    from django.http import Http404

    from apps.accounts.selectors import patient_profile_get_for_user
    from apps.audit.models import AuditEvent

    with pytest.raises(Http404):
        patient_profile_get_for_user(user=mallory, patient_id=alice.pk)
    assert AuditEvent.objects.filter(actor=mallory, action="access_denied", outcome="failure").exists()


def test_a_doctor_cannot_use_the_site_admin(login: Callable[[User], Client], bob: User) -> None:
    response = login(bob).get("/admin/")
    assert response.status_code == 302
    assert "login" in response["Location"]
