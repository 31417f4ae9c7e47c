from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client

from apps.accounts.models import User
from apps.clinics.models import Clinic, Membership
from apps.core import demo


@pytest.mark.sqlite
def test_it_builds_the_demo_network_once(db: None) -> None:
    call_command("seed_demo")
    call_command("seed_demo")
    assert Clinic.objects.count() == 3
    assert Membership.objects.filter(role="doctor").values("user").distinct().count() == 3
    assert Membership.objects.filter(role="admin").values("user").distinct().count() == 1
    patients = User.objects.filter(patient_profile__isnull=False)
    assert patients.count() == 5
    assert patients.filter(email__isnull=True).count() == 2
    assert set(Clinic.objects.values_list("timezone", flat=True)) == {"Asia/Shanghai"}


def test_if_empty_leaves_a_used_database_alone(db: None) -> None:
    User.objects.create_user(email="someone@example.org", password="x", full_name="Someone")
    call_command("seed_demo", "--if-empty")
    assert not Clinic.objects.exists()


def test_the_documented_demo_logins_work(db: None) -> None:
    call_command("seed_demo")
    client = Client()
    response = client.post("/accounts/login/", {"login": "zhang.wei@example.org", "password": demo.DEMO_PASSWORD})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
