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
    pressures = list(
        Reading.objects.filter(patient=zhang, kind="blood_pressure", alert__isnull=True).order_by("measured_at")
    )
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
    # 张伟's rising BP needs attention, not an alert, until the demo's recent readings (demo.ALERT_READINGS)
    others = Alert.objects.exclude(patient=li_na).select_related("reading")
    assert sorted(
        (a.reading.kind, a.reading.values["systolic" if a.reading.kind == "blood_pressure" else "heart_rate"])
        for a in others
    ) == [("blood_pressure", 176), ("blood_pressure", 184), ("heart_rate", 128)]

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


def test_the_demo_doctor_finds_his_day_on_the_dashboard(db: None) -> None:
    """王建国's triage (critical before urgent), his patients, the referral
    to him, 张伟's signed note with its diagnoses and his care team: all
    written through the services, and a rerun adds nothing."""
    from apps.audit.models import AuditEvent
    from apps.care.models import CareTeamMembership, ConsultNote, Diagnosis, NoteStatus, Referral
    from apps.care.selectors import patients_of_doctor, referrals_for_doctor
    from apps.care.services_notes import consult_note_verify
    from apps.vitals.selectors import alerts_open_triage

    call_command("seed_demo")
    wang = User.objects.get(email=demo.DEMO_DOCTOR)
    zhang = User.objects.get(email=demo.BP_PATIENT)
    li_na = User.objects.get(email=demo.GLUCOSE_PATIENT)
    liu = User.objects.get(phone=demo.PALPITATIONS_PATIENT)

    assert set(patients_of_doctor(doctor=wang)) == {zhang, li_na, liu}
    triage = list(alerts_open_triage(patient_ids=patients_of_doctor(doctor=wang).values("pk")))
    assert [a.severity for a in triage] == ["critical", "critical", "urgent", "urgent"]
    assert {a.patient for a in triage} == {zhang, li_na, liu}
    assert [r.patient for r in referrals_for_doctor(doctor=wang)] == [li_na]
    referral = Referral.objects.get()
    assert (referral.from_doctor.email, referral.status) == (demo.REFERRAL_FROM, "open")

    note = ConsultNote.objects.get(patient=zhang)
    assert note.status == NoteStatus.SIGNED and note.author == wang
    assert note.appointment.status == "completed" and note.appointment.starts_at < note.signed_at
    assert "血压" in note.objective  # pre-filled from his readings
    assert note.patient_summary == demo.NOTE_FIELDS["patient_summary"]
    assert consult_note_verify(note=note)
    assert list(Diagnosis.objects.filter(note=note).order_by("-is_primary").values_list("code", flat=True)) == [
        "I10",
        "E66.3",
    ]
    assert AuditEvent.objects.filter(object_type="consult_note", object_id=str(note.pk), actor=wang).exists()
    assert zhang.notifications.filter(template="care/plan_ready").exists()
    team = CareTeamMembership.objects.get(patient=zhang)
    assert (team.doctor.email, team.added_by) == (demo.CARE_TEAM_DOCTOR, wang)

    counts = (ConsultNote.objects.count(), Diagnosis.objects.count(), Referral.objects.count())
    call_command("seed_demo")
    assert (ConsultNote.objects.count(), Diagnosis.objects.count(), Referral.objects.count()) == counts
    assert CareTeamMembership.objects.count() == 1
    assert alerts_open_triage(patient_ids=patients_of_doctor(doctor=wang).values("pk")).count() == 4


@pytest.mark.sqlite
def test_the_demo_doctors_dashboard_and_chart_show_it(db: None) -> None:
    from apps.care.models import ConsultNote

    call_command("seed_demo")
    client = Client()
    client.force_login(User.objects.get(email=demo.DEMO_DOCTOR))
    page = client.get("/").content.decode()
    for text in ("张伟", "李娜", "刘芳", "184/112", "2.8"):
        assert text in page, text
    patients = client.get("/care/patients/").content.decode()
    for text in ("张伟", "李娜", "刘芳"):
        assert text in patients, text
    zhang = User.objects.get(email=demo.BP_PATIENT)
    chart = client.get(f"/care/patients/{zhang.pk}/")
    assert chart.status_code == 200
    text = chart.content.decode()
    note = ConsultNote.objects.get(patient=zhang)
    assert "I10" in text and "E66.3" in text and demo.NOTE_FIELDS["assessment"] in text
    assert "184/112" in text
    assert demo.NOTE_FIELDS["plan"] in client.get(f"/care/appointments/{note.appointment_id}/note/").content.decode()
    assert "李秀英" in client.get(f"/care/patients/{zhang.pk}/care-team/").content.decode()
    client.force_login(zhang)  # he reads the plain summary of his plan on that appointment's page
    assert demo.NOTE_FIELDS["patient_summary"] in client.get(f"/appointments/{note.appointment_id}/").content.decode()
