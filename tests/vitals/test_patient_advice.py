"""The patient is told what to do about an urgent or critical reading that
nobody showed them the advice of: one sent by API or device, imported
from CSV, or entered by staff on their behalf (in the app, and by SMS too
when critical, without health details); a flagged ECG is reported to
them, calmly, as sent to their doctor."""

from __future__ import annotations

from collections.abc import Callable
from datetime import time, timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.accounts.tokens import token_create
from apps.notifications.models import Notification, QuietHours
from apps.notifications.rendering import notification_render
from apps.scheduling.models import Appointment, AppointmentStatus
from apps.vitals.models import Alert, Reading
from apps.vitals.services import ReadingInput, readings_record_many
from apps.vitals.services_ecg import ecg_recording_analyse, ecg_recording_upload
from tests.vitals.conftest import CRISIS, GRADE_3, NOW, record
from tests.vitals.ecg_support import (
    irregular_rhythm,
    private_storage,  # noqa: F401  # fixture
    synthetic_ecg,
)

Login = Callable[[User], Client]
pytestmark = [pytest.mark.sqlite, pytest.mark.usefixtures("appointment")]

URL = "/api/v1/readings/"
CRISIS_ADVICE_EN = "Sit quietly for 5 minutes and measure again"
CRISIS_ADVICE_ZH = "请安静坐 5 分钟后再测一次"


def _post_for(client: Client, *, by: User, patient: User, values: dict[str, int], minutes_ago: int = 3) -> Any:
    _, raw = token_create(user=by, name="gateway", expires_in_days=30)
    body = {
        "patient": patient.pk,
        "kind": "blood_pressure",
        "values": values,
        "measured_at": (NOW - timedelta(minutes=minutes_ago)).isoformat(),
        "source": "device",
    }
    return client.post(URL, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}")


def _told(patient: User) -> Any:
    return Notification.objects.filter(recipient=patient, category="readings_alert")


@pytest.mark.parametrize(
    ("language", "advice", "category"),
    [("en", CRISIS_ADVICE_EN, "Hypertensive crisis"), ("zh-hans", CRISIS_ADVICE_ZH, "高血压危象")],
)
def test_it_tells_alice_of_a_critical_reading_bob_posted_in_her_language(
    client: Client, alice: User, bob: User, language: str, advice: str, category: str
) -> None:
    alice.language = language
    alice.save()
    response = _post_for(client, by=bob, patient=alice, values=CRISIS)
    assert response.status_code == 201
    reading = Reading.objects.get()
    alert = Alert.objects.get()
    sent = {n.channel: n for n in _told(alice)}
    assert sorted(sent) == ["in_app", "sms"]
    assert all(n.urgent and n.sensitive and n.template == "readings/advice" for n in sent.values())
    assert {n.idempotency_key for n in sent.values()} == {f"reading-advice:{alert.pk}"}
    assert sent["in_app"].context["link"] == reverse("vitals:reading", args=[reading.pk])
    in_app = notification_render(sent["in_app"]).text
    assert advice in in_app and category in in_app and "120" in in_app
    sms = notification_render(sent["sms"]).text
    assert f"/vitals/readings/{reading.pk}/" in sms and "120" in sms
    # No health detail by SMS: neither the flag, nor the values, nor the advice.
    for detail in (category, advice, "190", "Blood pressure", "血压"):
        assert detail not in sms
    assert _told(bob).count() == 1  # Bob gets his own alert, in the app (he has no phone)


def test_it_tells_alice_of_an_urgent_reading_in_the_app_only(client: Client, alice: User, bob: User) -> None:
    assert _post_for(client, by=bob, patient=alice, values=GRADE_3).status_code == 201
    sent = _told(alice).get()
    assert sent.channel == "in_app"
    assert "Rest for 5 minutes and measure again" in notification_render(sent).text


def test_it_tells_alice_of_her_own_device_and_csv_readings(alice: User) -> None:
    readings_record_many(
        by=alice,
        items=[
            ReadingInput(patient=alice, kind="blood_pressure", values=CRISIS, measured_at=NOW, source="device"),
            ReadingInput(
                patient=alice, kind="spo2", values={"spo2": 91}, measured_at=NOW - timedelta(hours=1), source="csv"
            ),
        ],
    )
    channels = sorted(_told(alice).values_list("template", "channel"))
    assert channels == [("readings/advice", "in_app"), ("readings/advice", "in_app"), ("readings/advice", "sms")]


def test_it_tells_alice_of_a_reading_bob_entered_on_the_staff_page(login: Login, alice: User, bob: User) -> None:
    url = reverse("vitals:staff_entry", args=[alice.pk, "blood_pressure"])
    data = {"systolic": "190", "diastolic": "110", "pulse": "", "measured_at": "2026-12-01T07:55", "note": ""}
    assert login(bob).post(url, data).status_code == 302
    assert sorted(_told(alice).values_list("channel", flat=True)) == ["in_app", "sms"]


def test_alice_entering_it_on_the_page_reads_the_advice_there_and_gets_no_message(
    login: Login, alice: User, bob: User
) -> None:
    data = {"systolic": "190", "diastolic": "110", "pulse": "", "measured_at": "2026-12-01T07:55", "note": ""}
    client = login(alice)
    response = client.post(reverse("vitals:entry", args=["blood_pressure"]), data, follow=True)
    assert "call 120 or go to the clinic now" in response.content.decode()
    assert _told(alice).count() == 0
    assert _told(bob).count() == 1


def test_the_same_reading_sent_twice_tells_her_once(client: Client, alice: User, bob: User) -> None:
    _post_for(client, by=bob, patient=alice, values=CRISIS)
    assert _post_for(client, by=bob, patient=alice, values=CRISIS).status_code == 200
    assert sorted(_told(alice).values_list("channel", flat=True)) == ["in_app", "sms"]


def test_a_normal_reading_tells_nobody(client: Client, alice: User, bob: User) -> None:
    _post_for(client, by=bob, patient=alice, values={"systolic": 118, "diastolic": 76})
    assert Notification.objects.count() == 0


def test_the_critical_sms_is_not_held_for_her_quiet_hours(client: Client, alice: User, bob: User) -> None:
    QuietHours.objects.create(user=alice, start=time(0, 0), end=time(23, 59))
    _post_for(client, by=bob, patient=alice, values=CRISIS)
    assert _told(alice).get(channel="sms").due_at == NOW


def test_once_sent_the_sms_keeps_no_details_and_the_inbox_keeps_the_advice(
    client: Client, alice: User, bob: User, deliver: Callable[[], Any]
) -> None:
    with deliver():
        _post_for(client, by=bob, patient=alice, values=CRISIS)
    sms = _told(alice).get(channel="sms")
    in_app = _told(alice).get(channel="in_app")
    assert (sms.status, sms.context) == ("sent", {})
    assert in_app.status == "sent" and CRISIS_ADVICE_EN in notification_render(in_app).text


def test_without_a_doctor_she_is_not_told_her_doctors_know(
    client: Client, alice: User, appointment: Appointment
) -> None:
    appointment.status = AppointmentStatus.CANCELLED
    appointment.save()
    record(alice, alice, values=CRISIS, source="api")
    text = notification_render(_told(alice).get(channel="in_app")).text
    assert CRISIS_ADVICE_EN in text and "doctors have been told" not in text


@pytest.mark.usefixtures("private_storage")
def test_a_flagged_ecg_is_reported_to_her_calmly_without_a_diagnosis(alice: User, bob: User) -> None:
    data = synthetic_ecg(irregular_rhythm(200))
    recording = ecg_recording_upload(
        patient=alice, by=alice, file=SimpleUploadedFile("ecg.csv", data), name="ecg.csv"
    ).recording
    ecg_recording_analyse(recording_id=recording.pk)
    ecg_recording_analyse(recording_id=recording.pk)  # run again: nothing new
    sent = _told(alice).get()
    assert (sent.channel, sent.template, sent.urgent) == ("in_app", "readings/ecg_sent", True)
    assert sent.context["link"] == f"/vitals/ecg/{recording.pk}/"
    text = notification_render(sent).text
    assert "sent to your doctor" in text
    assert "fibrillation" not in text and "rregular" not in text
    assert _told(bob).count() == 1
