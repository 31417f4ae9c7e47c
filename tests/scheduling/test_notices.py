"""What people are told about their appointments, and when."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from icalendar import Calendar

from apps.accounts.models import User
from apps.clinics.models import Clinic
from apps.notifications.models import Notification
from apps.notifications.services import notifications_enqueue_due
from apps.scheduling.models import Appointment
from apps.scheduling.services import (
    appointment_book,
    appointment_cancel,
    appointment_notices_send,
    appointment_notices_send_late,
    appointment_reschedule,
)
from tests.conftest import sms_sent
from tests.scheduling.conftest import NOW, TOMORROW_9, book

pytestmark = pytest.mark.usefixtures("hours")
Deliver = Callable[[], Any]


def _booked(alice: User, bob: User, clinic: Clinic, deliver: Deliver) -> Appointment:
    with time_machine.travel(NOW, tick=False), deliver():
        return book(alice, bob, clinic)


def test_booking_tells_the_patient_and_the_doctor(alice: User, bob: User, clinic: Clinic, deliver: Deliver) -> None:
    User.objects.filter(pk=alice.pk).update(language="zh-hans", timezone="America/New_York")
    alice.refresh_from_db()
    appointment = _booked(alice, bob, clinic, deliver)
    [sms] = sms_sent(alice.phone)
    # 09:00 in Shanghai, where the clinic is, is 20:00 the evening before in
    # New York, where Alice is.
    assert "2026-12-01 20:00" in sms.body
    assert "Bob" in sms.body
    assert "视频问诊" in sms.body
    [email] = mail.outbox
    [(filename, content, mimetype)] = email.attachments
    assert (filename, mimetype) == ("telemed-appointment.ics", "text/calendar")
    event = next(iter(Calendar.from_ical(content).walk("VEVENT")))
    assert event.decoded("dtstart") == appointment.starts_at
    assert str(event["uid"]) == f"appointment-{appointment.pk}@telemed"
    doctor_note = Notification.objects.get(recipient=bob, template="appointment/booked_doctor")
    assert doctor_note.channel == "in_app"
    assert doctor_note.status == "sent"


def test_a_booking_writes_all_its_notices_in_one_insert_and_one_broker_message(
    alice: User, bob: User, clinic: Clinic, monkeypatch: pytest.MonkeyPatch, deliver: Deliver
) -> None:
    from apps.notifications import tasks

    enqueued: list[list[int]] = []
    monkeypatch.setattr(tasks.notifications_deliver_task, "delay", enqueued.append)
    with CaptureQueriesContext(connection) as captured, time_machine.travel(NOW, tick=False), deliver():
        appointment = book(alice, bob, clinic)
    statements = [q["sql"] for q in captured.captured_queries if "notifications_" in q["sql"]]
    # Preferences, quiet hours, SMS opt-outs; then every row in one insert.
    assert len(statements) == 4
    assert statements[-1].startswith("INSERT")
    rows = Notification.objects.filter(clinic=clinic)
    # The patient's confirmation (SMS, email, app), the doctor's notice, two
    # reminders (SMS and app each).
    assert rows.count() == 3 + 1 + 2 * 2
    assert rows.filter(idempotency_key__startswith=f"appointment-reminder:{appointment.pk}:").count() == 4
    # Only what is due now is enqueued, with one message; reminders wait for beat.
    [ids] = enqueued
    assert sorted(ids) == sorted(rows.exclude(template="appointment/reminder").values_list("pk", flat=True))


def test_reminders_go_once_at_24_hours_and_1_hour(alice: User, bob: User, clinic: Clinic, deliver: Deliver) -> None:
    appointment = _booked(alice, bob, clinic, deliver)
    before = len(sms_sent(alice.phone))
    with time_machine.travel(appointment.starts_at - timedelta(hours=25), tick=False):
        notifications_enqueue_due()
    assert len(sms_sent(alice.phone)) == before
    with time_machine.travel(appointment.starts_at - timedelta(hours=23), tick=False):
        notifications_enqueue_due()
        notifications_enqueue_due()
    assert len(sms_sent(alice.phone)) == before + 1
    assert "reminder" in sms_sent(alice.phone)[-1].body
    with time_machine.travel(appointment.starts_at - timedelta(minutes=30), tick=False):
        notifications_enqueue_due()
    assert len(sms_sent(alice.phone)) == before + 2


def test_no_reminder_after_a_cancellation(alice: User, bob: User, clinic: Clinic, deliver: Deliver) -> None:
    appointment = _booked(alice, bob, clinic, deliver)
    with time_machine.travel(NOW, tick=False), deliver():
        appointment_cancel(appointment=appointment, by=alice, now=NOW)
    assert "cancelled" in sms_sent(alice.phone)[-1].body
    sent = len(sms_sent(alice.phone))
    with time_machine.travel(appointment.starts_at - timedelta(minutes=30), tick=False):
        notifications_enqueue_due()
    assert len(sms_sent(alice.phone)) == sent
    assert set(Notification.objects.filter(template="appointment/reminder").values_list("status", flat=True)) == {
        "withdrawn"
    }
    cancel_mail = mail.outbox[-1]
    calendar = Calendar.from_ical(cancel_mail.attachments[0][1])
    assert str(calendar["method"]) == "CANCEL"


def test_a_reschedule_moves_the_reminders(alice: User, bob: User, clinic: Clinic, deliver: Deliver) -> None:
    appointment = _booked(alice, bob, clinic, deliver)
    with time_machine.travel(NOW, tick=False), deliver():
        moved = appointment_reschedule(
            appointment=appointment, starts_at=TOMORROW_9 + timedelta(hours=1), by=alice, now=NOW
        )
    assert "moved to 2026-12-02 10:00" in sms_sent(alice.phone)[-1].body
    with time_machine.travel(appointment.starts_at - timedelta(minutes=30), tick=False):
        notifications_enqueue_due()  # the old appointment's 1-hour reminder must not go
    old = Notification.objects.filter(idempotency_key__startswith=f"appointment-reminder:{appointment.pk}:")
    assert set(old.values_list("status", flat=True)) == {"withdrawn"}
    with time_machine.travel(moved.starts_at - timedelta(minutes=30), tick=False):
        notifications_enqueue_due()
    new = Notification.objects.filter(idempotency_key__startswith=f"appointment-reminder:{moved.pk}:", channel="sms")
    assert list(new.values_list("status", flat=True)) == ["sent", "sent"]  # 24 hours and 1 hour before


def test_the_patients_own_booking_is_confirmed_at_once_even_in_quiet_hours(
    alice: User, bob: User, clinic: Clinic, deliver: Deliver
) -> None:
    User.objects.filter(pk=alice.pk).update(timezone="Europe/London")  # NOW is midnight in London
    alice.refresh_from_db()
    _booked(alice, bob, clinic, deliver)
    assert "booked" in sms_sent(alice.phone)[0].body


def test_a_booking_by_staff_waits_for_the_end_of_quiet_hours(
    alice: User, bob: User, carol: User, clinic: Clinic, deliver: Deliver
) -> None:
    User.objects.filter(pk=alice.pk).update(timezone="Europe/London")
    alice.refresh_from_db()
    with time_machine.travel(NOW, tick=False), deliver():
        appointment_book(
            patient=alice,
            doctor=bob,
            clinic=clinic,
            starts_at=TOMORROW_9 + timedelta(days=1),
            mode="video",
            booked_by=carol,
            now=NOW,
        )
    assert sms_sent(alice.phone) == []
    with time_machine.travel(NOW + timedelta(hours=7, minutes=1), tick=False):
        notifications_enqueue_due()
    assert "booked" in sms_sent(alice.phone)[0].body


def test_a_cancellation_by_staff_close_to_the_time_is_sent_at_once_even_in_quiet_hours(
    alice: User, bob: User, carol: User, clinic: Clinic, deliver: Deliver
) -> None:
    appointment = _booked(alice, bob, clinic, deliver)
    User.objects.filter(pk=alice.pk).update(timezone="Europe/London")
    late_evening = TOMORROW_9 - timedelta(hours=2)  # 23:00 in London, 2 h before the consult
    with time_machine.travel(late_evening, tick=False), deliver():
        appointment.patient.refresh_from_db()
        appointment_cancel(appointment=appointment, by=carol, reason="Doctor is ill", staff=True, now=late_evening)
    assert "cancelled" in sms_sent(alice.phone)[-1].body


# --- The booking's notices are written by the worker --------------------------


def test_a_booking_leaves_its_notices_to_the_worker_which_writes_them_once(
    alice: User, bob: User, clinic: Clinic, deliver: Deliver
) -> None:
    with time_machine.travel(NOW, tick=False), deliver() as callbacks:
        appointment = book(alice, bob, clinic)
        # Until the booking commits, nothing but the booking is written.
        assert not Notification.objects.exists()
        assert Appointment.objects.get(pk=appointment.pk).notices_pending
    assert callbacks  # the worker was asked, once the booking committed
    appointment.refresh_from_db()
    assert not appointment.notices_pending
    written = Notification.objects.count()
    assert written == 3 + 1 + 2 * 2
    with time_machine.travel(NOW, tick=False), deliver():
        assert appointment_notices_send(appointment_id=appointment.pk) is False  # a second run writes nothing
    assert Notification.objects.count() == written


def test_a_booking_whose_worker_message_was_lost_is_found_by_the_scan(
    alice: User, bob: User, clinic: Clinic, monkeypatch: pytest.MonkeyPatch, deliver: Deliver
) -> None:
    from apps.scheduling import tasks

    def broker_down(*args: object) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.appointment_notices_send_task, "delay", broker_down)
    with time_machine.travel(NOW, tick=False), deliver():
        appointment = book(alice, bob, clinic)  # booked all the same
    assert Appointment.objects.get(pk=appointment.pk).notices_pending
    assert not Notification.objects.exists()
    with time_machine.travel(NOW + timedelta(seconds=10), tick=False), deliver():
        assert appointment_notices_send_late() == 0  # the worker may still be on it
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False), deliver():
        assert appointment_notices_send_late() == 1
    assert "Bob" in sms_sent(alice.phone)[-1].body
    assert not Appointment.objects.get(pk=appointment.pk).notices_pending
    with time_machine.travel(NOW + timedelta(minutes=2), tick=False), deliver():
        assert appointment_notices_send_late() == 0


def test_a_booking_cancelled_before_its_notices_went_out_gets_no_confirmation(
    alice: User, bob: User, clinic: Clinic, monkeypatch: pytest.MonkeyPatch, deliver: Deliver
) -> None:
    from apps.scheduling import tasks

    monkeypatch.setattr(tasks.appointment_notices_send_task, "delay", lambda appointment_id: None)
    with time_machine.travel(NOW, tick=False), deliver():
        appointment = book(alice, bob, clinic)
        appointment_cancel(appointment=appointment, by=alice, now=NOW)
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False), deliver():
        assert appointment_notices_send_late() == 1
    assert not Notification.objects.filter(template="appointment/booked").exists()
    assert not Notification.objects.filter(template="appointment/reminder").exists()
    assert "cancelled" in sms_sent(alice.phone)[-1].body
