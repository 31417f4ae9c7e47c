"""Consult room writes: each recorded as an event and in the audit log,
published to the room after commit, and refused with nothing changed when
the caller or the input is wrong."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.consults.models import ChatMessage, Consult, ConsultEvent, ConsultPresence, ConsultState
from apps.consults.services import (
    ConsultError,
    chat_message_post,
    consult_check_record,
    consult_end,
    consult_join,
    consult_leave,
    consult_media_set,
    consult_open_for,
    consult_quality_report,
    consult_start,
)
from apps.scheduling.models import Appointment, AppointmentStatus
from apps.scheduling.services import AppointmentChangeError, appointment_mark
from tests.consults.conftest import IN_WINDOW, OPENS
from tests.scheduling.conftest import TOMORROW_9

pytestmark = pytest.mark.sqlite
Capture = Callable[..., Any]


def _kinds(consult: Consult) -> list[str]:
    return list(ConsultEvent.objects.filter(consult=consult).values_list("kind", flat=True))


def _published(callbacks: list[Callable[[], None]]) -> list[tuple[str, dict[str, Any]]]:
    """(group, event) of each message a block published on commit (other
    callbacks, such as enqueueing notifications, are not messages)."""
    return [callback.args for callback in callbacks if isinstance(callback, functools.partial)]


def _refused(code: str, action: Callable[[], object]) -> None:
    with pytest.raises(ConsultError) as refused:
        action()
    assert refused.value.code == code
    assert refused.value.message


def test_it_opens_one_room_per_appointment(appointment: Appointment) -> None:
    first = consult_open_for(appointment=appointment)
    again = consult_open_for(appointment=appointment)
    assert first.pk == again.pk
    assert _kinds(first) == ["opened"]
    assert AuditEvent.objects.filter(object_type="consult", action="create").count() == 1


def test_joining_and_leaving_are_recorded_and_told_to_the_room_and_the_doctor(
    alice: User, bob: User, consult: Consult, django_capture_on_commit_callbacks: Capture
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        consult_join(consult=consult, user=alice, channel_name="alice-1", now=IN_WINDOW)
    (room, to_room), (dashboard, to_doctor) = _published(callbacks)
    assert room == f"consult-{consult.appointment_id}"
    assert to_room["exclude_user_id"] == alice.pk
    assert to_room["message"] == {
        "type": "peer",
        "event": "joined",
        "role": "patient",
        "name": "Alice",
        "since": IN_WINDOW.isoformat(),
        "quality": None,
    }
    assert dashboard == f"doctor-{bob.pk}-waiting"
    assert (to_doctor["type"], to_doctor["present"], to_doctor["name"]) == ("waiting.changed", True, "Alice")
    assert AuditEvent.objects.filter(object_type="consult", action="view", actor=alice).exists()

    assert not consult_leave(consult=consult, user=alice, channel_name="someone-else", now=IN_WINDOW)
    assert ConsultPresence.objects.filter(user=alice).exists()
    with django_capture_on_commit_callbacks() as callbacks:
        assert consult_leave(consult=consult, user=alice, channel_name="alice-1", now=IN_WINDOW)
    assert [event["message"]["event"] for group, event in _published(callbacks) if group == room] == ["left"]
    assert not ConsultPresence.objects.filter(user=alice).exists()
    assert _kinds(consult) == ["opened", "joined", "left"]


def test_a_newer_socket_takes_over_the_presence_and_keeps_the_waiting_time(alice: User, consult: Consult) -> None:
    consult_join(consult=consult, user=alice, channel_name="phone-1", now=IN_WINDOW)
    presence = consult_join(consult=consult, user=alice, channel_name="phone-2", now=IN_WINDOW + timedelta(minutes=1))
    assert (presence.channel_name, presence.joined_at) == ("phone-2", IN_WINDOW)
    assert not consult_leave(consult=consult, user=alice, channel_name="phone-1")
    assert ConsultPresence.objects.get(user=alice).channel_name == "phone-2"


def test_strangers_cannot_join(mallory: User, consult: Consult) -> None:
    _refused("not_participant", lambda: consult_join(consult=consult, user=mallory, channel_name="m"))
    assert not ConsultPresence.objects.exists()


def test_only_the_doctor_starts_and_only_once(
    alice: User, bob: User, consult: Consult, django_capture_on_commit_callbacks: Capture
) -> None:
    _refused("doctor_only", lambda: consult_start(consult=consult, by=alice, now=IN_WINDOW))
    assert Consult.objects.get(pk=consult.pk).state == ConsultState.WAITING
    with django_capture_on_commit_callbacks() as callbacks:
        started = consult_start(consult=consult, by=bob, now=IN_WINDOW)
    assert (started.state, started.started_at) == (ConsultState.IN_PROGRESS, IN_WINDOW)
    room_messages = [event["message"] for group, event in _published(callbacks) if group.startswith("consult-")]
    assert room_messages == [{"type": "started", "started_at": IN_WINDOW.isoformat(), "by": "doctor"}]
    _refused("already_started", lambda: consult_start(consult=consult, by=bob, now=IN_WINDOW))
    assert _kinds(consult) == ["opened", "started"]
    assert AuditEvent.objects.filter(object_type="consult", reason="consult started", actor=bob).count() == 1


def test_ending_completes_the_appointment_with_the_consults_duration(
    bob: User, consult: Consult, django_capture_on_commit_callbacks: Capture
) -> None:
    consult_start(consult=consult, by=bob, now=TOMORROW_9)
    end = TOMORROW_9 + timedelta(minutes=20, seconds=10, milliseconds=900)
    with django_capture_on_commit_callbacks() as callbacks:
        ended = consult_end(consult=consult, by=bob, now=end)
    assert (ended.state, ended.ended_at) == (ConsultState.ENDED, end)
    appointment = Appointment.objects.get(pk=consult.appointment_id)
    assert (appointment.status, appointment.duration_s, appointment.completed_at) == ("completed", 1210, end)
    assert ConsultEvent.objects.get(consult=consult, kind="ended").data == {"duration_s": 1210}
    (ended_event,) = [event for _group, event in _published(callbacks) if event["type"] == "consult.ended"]
    assert ended_event["message"]["duration_s"] == 1210
    _refused("ended", lambda: consult_end(consult=consult, by=bob, now=end))


def test_a_consult_held_before_the_booked_start_still_completes_its_appointment(bob: User, consult: Consult) -> None:
    consult_start(consult=consult, by=bob, now=OPENS + timedelta(minutes=1))
    consult_end(consult=consult, by=bob, now=OPENS + timedelta(minutes=13))
    appointment = Appointment.objects.get(pk=consult.appointment_id)
    assert (appointment.status, appointment.duration_s) == ("completed", 720)


def test_ending_is_refused_to_the_patient_and_before_the_start_changing_nothing(
    alice: User, bob: User, consult: Consult
) -> None:
    _refused("not_started", lambda: consult_end(consult=consult, by=bob, now=IN_WINDOW))
    consult_start(consult=consult, by=bob, now=IN_WINDOW)
    _refused("doctor_only", lambda: consult_end(consult=consult, by=alice, now=IN_WINDOW))
    assert Consult.objects.get(pk=consult.pk).state == ConsultState.IN_PROGRESS
    assert Appointment.objects.get(pk=consult.appointment_id).status == AppointmentStatus.BOOKED
    assert _kinds(consult) == ["opened", "started"]


def test_ending_a_consult_whose_appointment_is_no_longer_booked_changes_nothing(bob: User, consult: Consult) -> None:
    consult_start(consult=consult, by=bob, now=TOMORROW_9)
    Appointment.objects.filter(pk=consult.appointment_id).update(status=AppointmentStatus.NO_SHOW)
    _refused("not_booked", lambda: consult_end(consult=consult, by=bob, now=TOMORROW_9 + timedelta(minutes=5)))
    assert Consult.objects.get(pk=consult.pk).state == ConsultState.IN_PROGRESS
    assert Appointment.objects.get(pk=consult.appointment_id).duration_s is None


def test_a_duration_is_only_for_a_completed_appointment(bob: User, appointment: Appointment) -> None:
    for status, duration_s in (("no_show", 60), ("completed", -1)):
        with pytest.raises(AppointmentChangeError):
            appointment_mark(appointment=appointment, status=status, by=bob, now=TOMORROW_9, duration_s=duration_s)
    assert Appointment.objects.get(pk=appointment.pk).status == AppointmentStatus.BOOKED


def test_chat_is_kept_and_sent_to_the_whole_room(
    alice: User, consult: Consult, django_capture_on_commit_callbacks: Capture
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        message = chat_message_post(consult=consult, sender=alice, body="  My cough is worse  ", now=IN_WINDOW)
    assert message.body == "My cough is worse"
    ((_group, event),) = _published(callbacks)
    assert event["exclude_user_id"] is None  # the sender's copy is the acknowledgement
    assert event["message"]["id"] == message.pk
    audit = AuditEvent.objects.get(object_type="consult", action="create", actor=alice)
    assert "cough" not in audit.reason.lower()  # no health data in the audit log


def test_chat_refuses_bad_messages_and_strangers_keeping_nothing(
    alice: User, bob: User, mallory: User, consult: Consult
) -> None:
    _refused("chat_empty", lambda: chat_message_post(consult=consult, sender=alice, body=" \n "))
    _refused("chat_too_long", lambda: chat_message_post(consult=consult, sender=alice, body="x" * 2001))
    _refused("not_participant", lambda: chat_message_post(consult=consult, sender=mallory, body="hi"))
    assert not ChatMessage.objects.exists()
    assert len(chat_message_post(consult=consult, sender=alice, body="x" * 2000).body) == 2000
    consult_start(consult=consult, by=bob, now=TOMORROW_9)
    consult_end(consult=consult, by=bob, now=TOMORROW_9 + timedelta(minutes=1))
    _refused("ended", lambda: chat_message_post(consult=consult, sender=alice, body="hello?"))
    assert ChatMessage.objects.count() == 1


def test_the_patients_check_result_is_kept_and_the_doctor_told(
    alice: User, bob: User, consult: Consult, django_capture_on_commit_callbacks: Capture
) -> None:
    result = {"rtt_ms": 180, "loss_pct": 0.5, "bitrate_kbps": 420, "relay_ok": True, "recommendation": "video"}
    with django_capture_on_commit_callbacks() as callbacks:
        kept = consult_check_record(consult=consult, by=alice, result=result, now=IN_WINDOW)
    assert kept == {
        "rtt_ms": 180.0,
        "loss_pct": 0.5,
        "bitrate_kbps": 420.0,
        "relay_ok": True,
        "recommendation": "video",
        "checked_at": IN_WINDOW.isoformat(),
    }
    assert Consult.objects.get(pk=consult.pk).check_result == kept
    groups = [group for group, _event in _published(callbacks)]
    assert groups == [f"consult-{consult.appointment_id}", f"doctor-{bob.pk}-waiting"]
    assert _kinds(consult) == ["opened", "check_result"]


@pytest.mark.parametrize(
    "result",
    [
        None,
        "video",
        {},
        {"recommendation": "hologram"},
        {"recommendation": "video", "rtt_ms": "fast"},
        {"recommendation": "video", "rtt_ms": True},
        {"recommendation": "video", "loss_pct": 101},
        {"recommendation": "video", "bitrate_kbps": -5},
        {"recommendation": "video", "rtt_ms": float("nan")},
        {"recommendation": "video", "relay_ok": "yes"},
        {"recommendation": "video", "camera": "on"},
    ],
)
def test_a_bad_check_result_changes_nothing(alice: User, consult: Consult, result: object) -> None:
    _refused("bad_check", lambda: consult_check_record(consult=consult, by=alice, result=result))
    assert Consult.objects.get(pk=consult.pk).check_result is None
    assert _kinds(consult) == ["opened"]


def test_only_the_patient_reports_a_check(bob: User, consult: Consult) -> None:
    _refused("patient_only", lambda: consult_check_record(consult=consult, by=bob, result={"recommendation": "chat"}))


def test_either_side_switches_the_media_mode_and_the_other_is_told(
    alice: User, bob: User, consult: Consult, django_capture_on_commit_callbacks: Capture
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        consult_media_set(consult=consult, by=alice, mode="audio")
    ((_group, event),) = _published(callbacks)
    assert (event["message"], event["exclude_user_id"]) == (
        {"type": "media", "mode": "audio", "by": "patient", "reason": "manual"},
        alice.pk,
    )
    consult_media_set(consult=consult, by=bob, mode="audio")  # already so: nothing happens
    _refused("bad_media", lambda: consult_media_set(consult=consult, by=bob, mode="smell"))
    assert Consult.objects.get(pk=consult.pk).media_mode == "audio"
    assert ConsultEvent.objects.get(consult=consult, kind="media_changed").data == {
        "mode": "audio",
        "role": "patient",
        "reason": "manual",
    }


def test_a_switch_the_client_made_for_a_weak_link_is_recorded_as_such(
    alice: User, consult: Consult, django_capture_on_commit_callbacks: Capture
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        consult_media_set(consult=consult, by=alice, mode="audio", reason="weak_link")
    ((_group, event),) = _published(callbacks)
    assert event["message"]["reason"] == "weak_link"
    assert ConsultEvent.objects.get(consult=consult, kind="media_changed").data["reason"] == "weak_link"


def test_a_quality_report_is_kept_on_the_presence(alice: User, consult: Consult) -> None:
    consult_join(consult=consult, user=alice, channel_name="a", now=IN_WINDOW)
    for bad in (None, [], {"rtt_ms": -1}, {"jitter": 3}):
        _refused(
            "bad_quality",
            lambda bad=bad: consult_quality_report(consult=consult, user=alice, channel_name="a", quality=bad),
        )
    assert ConsultPresence.objects.get(user=alice).quality is None
    consult_quality_report(consult=consult, user=alice, channel_name="a", quality={"rtt_ms": 90})
    assert ConsultPresence.objects.get(user=alice).quality == {"rtt_ms": 90.0, "loss_pct": None, "bitrate_kbps": None}
