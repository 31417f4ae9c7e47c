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


def test_it_gives_every_doctor_hours_and_the_demo_patient_a_consult_soon(db: None) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from apps.scheduling.models import Appointment, AvailabilityRule

    call_command("seed_demo")
    for membership in Membership.objects.filter(role="doctor"):
        assert AvailabilityRule.objects.filter(doctor=membership.user, clinic=membership.clinic).exists()
    soon = Appointment.objects.get(reason=demo.SOON_REASON, status="booked")
    assert timezone.now() < soon.starts_at <= timezone.now() + timedelta(minutes=10)
    assert soon.mode == "video"
    assert Appointment.objects.filter(patient=soon.patient, status="completed").exists()
    Appointment.objects.filter(pk=soon.pk).update(
        starts_at=soon.starts_at - timedelta(days=1), ends_at=soon.ends_at - timedelta(days=1)
    )
    call_command("seed_demo", "--refresh-soon")
    fresh = Appointment.objects.get(reason=demo.SOON_REASON, status="booked")
    assert timezone.now() < fresh.starts_at <= timezone.now() + timedelta(minutes=10)
    call_command("seed_demo")  # still idempotent
    assert Appointment.objects.filter(reason=demo.SOON_REASON, status="booked").count() == 1
