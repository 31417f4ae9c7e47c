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


def test_it_gives_the_demo_patients_months_of_readings_and_an_analysed_ecg(db: None) -> None:
    from statistics import mean

    from apps.vitals.models import Alert, EcgRecording, EcgStatus, Reading

    call_command("seed_demo")
    zhang = User.objects.get(email=demo.BP_PATIENT)
    pressures = list(Reading.objects.filter(patient=zhang, kind="blood_pressure").order_by("measured_at"))
    assert len(pressures) == 2 * demo.READINGS_DAYS
    assert {reading.source for reading in pressures} == {"manual"}
    first_weeks, last_weeks = pressures[:28], pressures[-28:]
    assert 124 <= mean(r.values["systolic"] for r in first_weeks) <= 134
    assert 147 <= mean(r.values["systolic"] for r in last_weeks) <= 157
    assert mean(r.values["diastolic"] for r in last_weeks) - mean(r.values["diastolic"] for r in first_weeks) >= 10
    assert Reading.objects.filter(patient=zhang, kind="weight").count() >= 15
    assert (pressures[-1].measured_at - pressures[0].measured_at).days >= demo.READINGS_DAYS - 2

    li_na = User.objects.get(email=demo.GLUCOSE_PATIENT)
    glucose = Reading.objects.filter(patient=li_na, kind="glucose")
    assert glucose.count() >= demo.READINGS_DAYS
    lows = [r for r in glucose if r.values["glucose"] < 3.9]
    assert len(lows) == len(demo.GLUCOSE_LOWS)
    assert any(r.values["glucose"] < 3.0 for r in lows)
    alert = Alert.objects.get(patient=li_na)
    assert alert.severity == "critical"
    doctor = User.objects.get(email=demo.GLUCOSE_DOCTOR)
    assert doctor.notifications.filter(category="readings_alert").exists()
    assert not Alert.objects.exclude(patient=li_na).exists()  # 张伟's rising BP needs attention, not an alert

    mary = User.objects.get(email=demo.NORMAL_PATIENT)
    assert set(Reading.objects.filter(patient=mary).values_list("severity", flat=True)) == {"normal"}

    ecg = EcgRecording.objects.get(patient=zhang)
    assert ecg.status == EcgStatus.DONE
    assert ecg.file_format == "wfdb"
    assert 70 <= ecg.summary["heart_rate"]["mean_bpm"] <= 80
    assert ecg.summary["beat_count"] > 2200


@pytest.mark.sqlite
def test_running_it_again_adds_no_readings_or_ecg(db: None) -> None:
    from apps.vitals.models import Alert, EcgRecording, Reading

    call_command("seed_demo", "--if-empty")
    counts = (Reading.objects.count(), Alert.objects.count(), EcgRecording.objects.count())
    assert counts[0] > 400
    assert counts[2] == 1
    call_command("seed_demo", "--if-empty")
    call_command("seed_demo")
    assert (Reading.objects.count(), Alert.objects.count(), EcgRecording.objects.count()) == counts
