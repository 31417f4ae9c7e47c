"""reading_record and readings_for_user: checks, dedupe, flags, audit,
alerts and the doctors' notifications."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import User
from apps.accounts.services import consent_withdraw
from apps.audit.models import AuditEvent
from apps.audit.selectors import audit_chain_verify
from apps.clinics.models import Clinic
from apps.notifications.models import Notification
from apps.scheduling.models import Appointment, AppointmentStatus
from apps.vitals import services
from apps.vitals.models import Alert, Reading
from apps.vitals.selectors import readings_for_user
from apps.vitals.services import (
    BatchRefused,
    ReadingInput,
    ReadingRefused,
    TargetRefused,
    patient_target_set,
    reading_record,
    readings_check_many,
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


# --- Batches ------------------------------------------------------------------


def _batch(patient: User, size: int, *, start_min: int = 0) -> list[ReadingInput]:
    """``size`` readings of every sort a batch can hold: normal, critical and
    urgent ones (alerts), glucose in mg/dL, heights and weights (BMI), each
    a minute apart from ``start_min`` minutes ago backwards."""
    sorts: list[tuple[str, dict[str, Any], str, str]] = [
        ("blood_pressure", BP, "", ""),
        ("blood_pressure", CRISIS, "", ""),
        ("spo2", {"spo2": 91}, "", ""),
        ("glucose", {"glucose": "126"}, "fasting", "mg/dL"),
        ("height", {"height": 170}, "", ""),
        ("weight", {"weight": "72.5"}, "", ""),
    ]
    items = []
    for n in range(size):
        kind, values, context, unit = sorts[n % len(sorts)]
        items.append(
            ReadingInput(
                patient=patient,
                kind=kind,
                values=values,
                measured_at=NOW - timedelta(minutes=start_min + n + 1),
                source="csv",
                context=context,
                unit=unit,
            )
        )
    return items


@pytest.mark.usefixtures("appointment")
def test_it_records_a_batch_in_as_many_queries_whatever_its_size(alice: User, bob: User) -> None:
    bob.phone = "+8613900000002"
    bob.save()
    counts = []
    for size, start_min in ((10, 0), (200, 100)):
        stored_before = record(
            alice, kind="spo2", values={"spo2": 97}, measured_at=NOW - timedelta(days=3, minutes=size)
        )
        items = _batch(alice, size, start_min=start_min)
        again = ReadingInput(
            patient=alice,
            kind="spo2",
            values={"spo2": 97},
            measured_at=stored_before.reading.measured_at,
            source="csv",
        )
        items += [items[0], again]  # repeated in the batch, and stored before
        with CaptureQueriesContext(connection) as queries:
            recorded = readings_record_many(by=alice, items=items)
        assert sum(one.created for one in recorded) == size
        assert recorded[-2].reading.pk == recorded[0].reading.pk and not recorded[-2].created
        assert recorded[-1].reading.pk == stored_before.reading.pk and not recorded[-1].created
        assert sum(one.alert is not None for one in recorded) == len([i for i in range(size) if i % 6 in (1, 2)])
        statements = [query["sql"] for query in queries.captured_queries]
        counts.append((len(statements), sum(not sql.startswith("INSERT") for sql in statements)))
    (few, few_lookups), (more, more_lookups) = counts
    assert few_lookups == more_lookups  # access, consent, duplicates, targets, height, doctors… once a batch
    if connection.vendor == "postgresql":
        assert few == more
    else:  # SQLite inserts in chunks of its 999 parameters: 200 readings take 3 inserts, their 267 events 5
        assert more - few <= 12
    assert few <= 25
    assert Reading.objects.count() == 2 + 10 + 200
    assert Alert.objects.count() == 4 + 67
    assert _audits("create", "reading") == 2 + 10 + 200
    assert _audits("create", "alert") == 4 + 67
    # Each alert tells Bob in the app, and by SMS too when critical (2 + 34 of them).
    sent = Notification.objects.filter(recipient=bob, category="readings_alert")
    assert sent.filter(channel="in_app").count() == 4 + 67
    assert sent.filter(channel="sms").count() == 2 + 34


def test_a_batch_is_audited_per_reading_and_the_chain_holds(alice: User, bob: User, appointment: Appointment) -> None:
    record(alice)  # an event before the batch's
    recorded = readings_record_many(by=bob, items=_batch(alice, 12, start_min=20))
    events = AuditEvent.objects.filter(actor=bob, action="create").order_by("id")
    readings = [str(one.reading.pk) for one in recorded]
    alerts = [str(one.alert.pk) for one in recorded if one.alert is not None]
    assert [e.object_id for e in events if e.object_type == "reading"] == readings
    assert [e.object_id for e in events if e.object_type == "alert"] == alerts
    assert {(e.patient_id, e.role, e.outcome) for e in events} == {(alice.pk, "doctor", "success")}
    assert list(audit_chain_verify()) == []


def test_a_weight_in_a_batch_gets_its_bmi_from_a_height_before_it(alice: User) -> None:
    record(alice, kind="height", values={"height": 160}, measured_at=NOW - timedelta(days=90))

    def item(kind: str, value: str, days: int) -> ReadingInput:
        return ReadingInput(
            patient=alice, kind=kind, values={kind: value}, measured_at=NOW - timedelta(days=days), source="csv"
        )

    recorded = readings_record_many(
        by=alice,
        items=[
            item("weight", "70", 40),  # the stored height: 160 cm
            item("height", "175", 30),  # later than the stored one: it counts from here on
            item("weight", "70", 20),
            item("height", "150", 100),  # older than the latest: it does not
            item("weight", "70", 10),
        ],
    )
    assert [one.reading.values.get("bmi") for one in recorded] == [27.3, None, 22.9, None, 22.9]


def test_a_batch_refused_for_one_patient_stores_nothing_for_anyone(alice: User, bob: User, mallory: User) -> None:
    items = [*_batch(alice, 3), *_batch(mallory, 2)]
    with pytest.raises(ReadingRefused) as refused:
        readings_record_many(by=alice, items=items)
    assert refused.value.code == "not_found"
    assert Reading.objects.count() == 0
    assert AuditEvent.objects.filter(action="access_denied", actor=alice, object_id=str(mallory.pk)).count() == 1


def test_checking_a_batch_writes_nothing_and_finds_the_duplicates(alice: User, appointment: Appointment) -> None:
    stored = record(alice).reading
    same = ReadingInput(patient=alice, kind="blood_pressure", values=BP, measured_at=stored.measured_at, source="csv")
    bad = ReadingInput(patient=alice, kind="spo2", values={"spo2": 120}, measured_at=NOW, source="csv")
    new = _batch(alice, 2, start_min=30)
    checks = readings_check_many(by=alice, items=[new[0], same, bad, new[1], same, new[0]])
    assert [check.is_new for check in checks] == [True, False, False, True, False, False]
    assert checks[1].stored == stored and checks[4].repeats == 1 and checks[5].repeats == 0
    assert list(checks[2].errors) == ["spo2"] and not checks[2].content_hash
    assert Reading.objects.count() == 1 and Alert.objects.count() == 0
    assert _audits("create", "reading") == 1


def test_a_reading_stored_meanwhile_by_another_request_is_not_stored_twice(
    alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the batch's duplicate lookup and its insert, a concurrent
    request stores one of its readings: the insert is retried without it."""
    checked = services.readings_check_many
    raced: list[bool] = []

    def check_then_race(**arguments: Any) -> Any:
        checks = checked(**arguments)
        if not raced:
            raced.append(True)
            reading_record(patient=alice, by=alice, kind="spo2", values={"spo2": 97}, measured_at=NOW, source="api")
        return checks

    monkeypatch.setattr(services, "readings_check_many", check_then_race)
    first = ReadingInput(patient=alice, kind="spo2", values={"spo2": 97}, measured_at=NOW, source="api")
    other = ReadingInput(patient=alice, kind="spo2", values={"spo2": 96}, measured_at=NOW, source="api")
    recorded = readings_record_many(by=alice, items=[first, other])
    assert [one.created for one in recorded] == [False, True]
    assert Reading.objects.count() == 2
    assert _audits("create", "reading") == 2
