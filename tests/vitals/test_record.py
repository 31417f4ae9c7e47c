"""reading_record and readings_for_user: checks, dedupe, flags, audit,
alerts and the doctors' notifications."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.http import Http404

from apps.accounts.models import User
from apps.accounts.services import consent_withdraw
from apps.audit.models import AuditEvent
from apps.clinics.models import Clinic
from apps.notifications.models import Notification
from apps.scheduling.models import Appointment, AppointmentStatus
from apps.vitals.models import Alert, Reading
from apps.vitals.selectors import readings_for_user
from apps.vitals.services import (
    BatchRefused,
    ReadingInput,
    ReadingRefused,
    TargetRefused,
    patient_target_set,
    readings_record_many,
)
from tests.factories import ClinicFactory, make_clinic_admin
from tests.vitals.conftest import BP, CRISIS, GRADE_3, NOW, record

pytestmark = pytest.mark.sqlite


def _audits(action: str, object_type: str) -> int:
    return AuditEvent.objects.filter(action=action, object_type=object_type).count()


def test_alice_records_a_reading(alice: User) -> None:
    recorded = record(alice, note="after a walk")
    reading = recorded.reading
    assert recorded.created
    assert reading.values == {"systolic": 128, "diastolic": 82, "pulse": 70}
    assert (reading.category, reading.severity, reading.rule) == ("bp_high_normal", "normal", "china_2018")
    assert (reading.source, reading.entered_by, reading.note) == ("manual", alice, "after a walk")
    event = AuditEvent.objects.get(action="create", object_type="reading")
    assert (event.object_id, event.patient_id, event.actor_id) == (str(reading.pk), alice.pk, alice.pk)
    assert recorded.alert is None


def test_the_same_reading_sent_twice_is_stored_once(alice: User) -> None:
    first = record(alice)
    again = record(alice, measured_at=NOW - timedelta(minutes=10, microseconds=-400), values=dict(BP))
    assert not again.created
    assert again.reading.pk == first.reading.pk
    assert Reading.objects.count() == 1
    assert _audits("create", "reading") == 1
    other_minute = record(alice, measured_at=NOW - timedelta(minutes=11))
    assert other_minute.created


def test_glucose_in_mg_dl_is_stored_in_mmol_l(alice: User) -> None:
    reading = record(alice, kind="glucose", values={"glucose": "126"}, unit="mg/dL", context="fasting").reading
    assert reading.values == {"glucose": 7.0}
    assert reading.category == "glucose_in_range"
    same = record(alice, kind="glucose", values={"glucose": "7.0"}, unit="mmol/L", context="fasting")
    assert not same.created  # the same reading, whatever the unit it came in


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"values": {"systolic": 301, "diastolic": 90}}, "systolic"),
        ({"values": {"systolic": 80, "diastolic": 90}}, "__all__"),
        ({"kind": "spo2", "values": {"spo2": 101}}, "spo2"),
        ({"kind": "cholesterol", "values": {}}, "kind"),
        ({"measured_at": NOW + timedelta(minutes=6)}, "measured_at"),
        ({"source": "fax"}, "source"),
    ],
)
def test_it_refuses_bad_input_and_stores_nothing(alice: User, overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ReadingRefused) as refused:
        record(alice, **overrides)
    assert refused.value.code == "invalid"
    assert field in refused.value.errors
    assert Reading.objects.count() == 0
    assert _audits("create", "reading") == 0


def test_a_little_clock_skew_is_allowed(alice: User) -> None:
    assert record(alice, measured_at=NOW + timedelta(minutes=4)).created


def test_the_future_is_refused_with_a_clear_message(alice: User) -> None:
    with pytest.raises(ReadingRefused) as refused:
        record(alice, measured_at=NOW + timedelta(hours=1))
    assert refused.value.errors["measured_at"] == ["The time of measurement cannot be in the future."]


def test_consent_is_required(alice: User, mallory: User) -> None:
    with pytest.raises(ReadingRefused) as refused:
        record(mallory)
    assert refused.value.code == "no_consent"
    consent_withdraw(patient=alice, withdrawn_by=alice)
    with pytest.raises(ReadingRefused):
        record(alice)
    assert Reading.objects.count() == 0


@pytest.mark.usefixtures("appointment")
def test_who_may_record_for_alice(alice: User, bob: User, carol: User, dave: User, mallory: User) -> None:
    assert record(alice, bob, source="staff").reading.entered_by == bob
    assert record(alice, carol, source="staff", values={"systolic": 120, "diastolic": 70}).created
    for outsider in (dave, mallory):
        with pytest.raises(ReadingRefused) as refused:
            record(alice, outsider, values={"systolic": 121, "diastolic": 70})
        assert refused.value.code == "not_found"
    assert Reading.objects.count() == 2
    assert AuditEvent.objects.filter(action="access_denied", object_type="readings").count() == 2


def test_carol_records_only_for_patients_of_her_clinic(alice: User, bob: User, clinic: Clinic) -> None:
    elsewhere = make_clinic_admin(clinic=ClinicFactory(), full_name="Erin", email="erin@example.org")
    Appointment.objects.create(
        patient=alice,
        doctor=bob,
        clinic=clinic,
        starts_at=NOW,
        ends_at=NOW + timedelta(minutes=30),
        mode="video",
        booked_by=alice,
    )
    with pytest.raises(ReadingRefused):
        record(alice, elsewhere)


def test_a_cancelled_appointment_gives_no_access(alice: User, bob: User, appointment: Appointment) -> None:
    appointment.status = AppointmentStatus.CANCELLED
    appointment.save()
    with pytest.raises(ReadingRefused):
        record(alice, bob)


def test_a_critical_reading_alerts_the_doctors_in_the_app_and_by_sms(
    alice: User, bob: User, appointment: Appointment, deliver: Callable[[], Any]
) -> None:
    bob.phone = "+8613900000002"
    bob.save()
    with deliver():
        recorded = record(alice, values=CRISIS)
    assert recorded.reading.severity == "critical"
    alert = Alert.objects.get()
    assert (alert.reading, alert.severity, alert.status, alert.patient) == (recorded.reading, "critical", "open", alice)
    assert recorded.doctors_told == 1
    sent = Notification.objects.filter(recipient=bob, category="readings_alert")
    assert sorted(sent.values_list("channel", flat=True)) == ["in_app", "sms"]
    assert all(n.urgent for n in sent)
    assert set(sent.values_list("status", flat=True)) == {"sent"}
    assert _audits("create", "alert") == 1


def test_an_urgent_reading_alerts_in_the_app_only(
    alice: User, bob: User, appointment: Appointment, deliver: Callable[[], Any]
) -> None:
    bob.phone = "+8613900000002"
    bob.save()
    with deliver():
        record(alice, values=GRADE_3)
    assert Alert.objects.get().severity == "urgent"
    assert list(Notification.objects.filter(recipient=bob).values_list("channel", flat=True)) == ["in_app"]


def test_normal_and_attention_readings_open_no_alert(alice: User, bob: User, appointment: Appointment) -> None:
    record(alice)
    record(alice, values={"systolic": 150, "diastolic": 95})
    assert Alert.objects.count() == 0
    assert Notification.objects.filter(category="readings_alert").count() == 0


def test_a_duplicate_of_a_critical_reading_alerts_once(alice: User, bob: User, appointment: Appointment) -> None:
    record(alice, values=CRISIS)
    record(alice, values=CRISIS)
    assert Alert.objects.count() == 1
    assert Notification.objects.filter(recipient=bob, category="readings_alert").count() == 1


def test_doctors_of_cancelled_appointments_are_not_alerted(alice: User, bob: User, appointment: Appointment) -> None:
    appointment.status = AppointmentStatus.CANCELLED
    appointment.save()
    record(alice, values=CRISIS)
    assert Alert.objects.count() == 1  # for the record (the doctor workspace)
    assert Notification.objects.filter(category="readings_alert").count() == 0


def test_a_doctors_target_overrides_the_defaults(alice: User, bob: User, appointment: Appointment) -> None:
    patient_target_set(patient=alice, by=bob, kind="blood_pressure", field="systolic", low=None, high=Decimal(125))
    reading = record(alice).reading
    assert (reading.category, reading.severity, reading.rule) == ("above_target", "attention", "target")
    assert AuditEvent.objects.filter(object_type="patient_target", action="update").count() == 1


def test_only_her_doctor_sets_targets(
    alice: User, bob: User, dave: User, carol: User, appointment: Appointment
) -> None:
    for someone in (alice, dave, carol):
        with pytest.raises(TargetRefused):
            patient_target_set(patient=alice, by=someone, kind="spo2", field="spo2", low=Decimal(88), high=None)
    with pytest.raises(TargetRefused):
        patient_target_set(patient=alice, by=bob, kind="spo2", field="spo2", low=Decimal(95), high=Decimal(90))


def test_weight_gets_a_bmi_from_the_latest_height(alice: User) -> None:
    assert "bmi" not in record(alice, kind="weight", values={"weight": 70}).reading.values
    record(alice, kind="height", values={"height": 175}, measured_at=NOW - timedelta(days=30))
    reading = record(alice, kind="weight", values={"weight": "70.0"}, measured_at=NOW - timedelta(minutes=1)).reading
    assert reading.values == {"weight": 70, "bmi": 22.9}
    assert reading.category == "bmi_normal"


def test_a_batch_is_all_or_nothing(alice: User) -> None:
    good = ReadingInput(patient=alice, kind="spo2", values={"spo2": 97}, measured_at=NOW, source="api")
    bad = ReadingInput(patient=alice, kind="spo2", values={"spo2": 120}, measured_at=NOW, source="api")
    with pytest.raises(BatchRefused) as refused:
        readings_record_many(by=alice, items=[good, bad, good])
    assert list(refused.value.errors) == [1]
    assert Reading.objects.count() == 0
    stored = readings_record_many(by=alice, items=[good, good])
    assert [r.created for r in stored] == [True, False]
    assert Reading.objects.count() == 1


@pytest.mark.usefixtures("appointment")
def test_who_reads_alices_readings(alice: User, bob: User, carol: User, dave: User, mallory: User) -> None:
    record(alice)
    record(alice, kind="spo2", values={"spo2": 97})
    assert readings_for_user(user=alice, patient_id=alice.pk).count() == 2
    assert [r.kind for r in readings_for_user(user=bob, patient_id=alice.pk, kind="spo2")] == ["spo2"]
    for outsider in (carol, dave, mallory):
        with pytest.raises(Http404):
            readings_for_user(user=outsider, patient_id=alice.pk)
    views = AuditEvent.objects.filter(action="view", object_type="readings", patient=alice)
    assert sorted(views.values_list("actor_id", flat=True)) == sorted([alice.pk, bob.pk])


def test_period_filters(alice: User) -> None:
    record(alice, measured_at=NOW - timedelta(days=40))
    record(alice, measured_at=NOW - timedelta(days=2))
    assert readings_for_user(user=alice, patient_id=alice.pk, since=NOW - timedelta(days=30)).count() == 1
    assert readings_for_user(user=alice, patient_id=alice.pk, until=NOW - timedelta(days=30)).count() == 1
