"""The consult socket through the real ASGI application (origin check,
session authentication, routing), on the in-memory channel layer and on
channels-redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from apps.accounts.models import User
from apps.consults.models import ChatMessage, Consult, ConsultEvent, ConsultPresence
from apps.consults.selectors import consults_waiting_for
from apps.scheduling.models import Appointment, AppointmentStatus
from apps.scheduling.services import appointment_cancel
from tests.conftest import signed_in
from tests.consults.conftest import CLOSES, IN_WINDOW, OPENS, join, open_socket, refusal

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("channel_layer")]

OFFER = {"type": "offer", "sdp": "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n"}
CANDIDATE = {"candidate": "candidate:1 1 udp 2122260223 192.168.1.2 54321 typ host", "sdpMid": "0", "sdpMLineIndex": 0}


@pytest.fixture(autouse=True)
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(IN_WINDOW, tick=False) as traveller:
        yield traveller


async def _started(alice: User, bob: User, appointment: Appointment) -> tuple[Any, Any]:
    patient = await join(alice, appointment.pk)
    doctor = await join(bob, appointment.pk)
    await patient.expect("peer")
    await doctor.send({"type": "start"})
    assert (await doctor.expect("started"))["by"] == "doctor"
    await patient.expect("started")
    return patient, doctor


async def test_it_admits_the_patient_and_the_doctor_and_tells_each_about_the_other(
    alice: User, bob: User, appointment: Appointment
) -> None:
    patient = await join(alice, appointment.pk)
    welcome = patient.welcome
    assert welcome["you"] == {"role": "patient", "name": "Alice", "polite": True}
    assert welcome["consult"]["state"] == "waiting"
    assert welcome["consult"]["media_mode"] == "video"
    assert welcome["consult"]["opens_at"] == "2026-12-02T00:45:00+00:00"
    assert welcome["present"] == []
    assert welcome["ice_servers"] == []  # nothing on the internet unless configured
    assert welcome["ice_transport_policy"] == "all"
    assert welcome["limits"]["max_message_bytes"] == 65536

    doctor = await join(bob, appointment.pk)
    assert doctor.welcome["you"]["role"] == "doctor"
    assert doctor.welcome["you"]["polite"] is False
    assert [(p["role"], p["name"]) for p in doctor.welcome["present"]] == [("patient", "Alice")]
    joined = await patient.expect("peer")
    assert (joined["event"], joined["role"], joined["name"]) == ("joined", "doctor", "Bob")
    assert await doctor.silent()  # nothing about his own arrival
    await patient.close()
    left = await doctor.expect("peer")
    assert (left["event"], left["role"]) == ("left", "patient")
    await doctor.close()


async def test_the_doctors_dashboard_group_learns_who_is_waiting(
    alice: User, bob: User, appointment: Appointment
) -> None:
    layer = get_channel_layer()
    dashboard = await layer.new_channel()
    await layer.group_add(f"doctor-{bob.pk}-waiting", dashboard)

    patient = await join(alice, appointment.pk)
    arrived = await layer.receive(dashboard)
    assert arrived["type"] == "waiting.changed"
    assert (arrived["appointment_id"], arrived["present"], arrived["name"]) == (appointment.pk, True, "Alice")
    waiting = await database_sync_to_async(consults_waiting_for)(doctor=bob, now=IN_WINDOW)
    assert [w.name for w in waiting] == ["Alice"]

    await patient.close()
    gone = await layer.receive(dashboard)
    assert (gone["appointment_id"], gone["present"]) == (appointment.pk, False)
    assert await database_sync_to_async(consults_waiting_for)(doctor=bob, now=IN_WINDOW) == []


async def test_it_refuses_anyone_but_the_participants(mallory: User, carol: User, appointment: Appointment) -> None:
    assert await refusal(mallory, appointment.pk) == (4404, None)
    assert await refusal(carol, appointment.pk) == (4404, None)  # the clinic's admin: not a participant
    assert await refusal(None, appointment.pk) == (4401, None)
    assert await refusal(mallory, appointment.pk + 1000) == (4404, None)
    assert not await Consult.objects.filter(appointment=appointment).aexists()


async def test_it_refuses_a_foreign_origin(alice: User, appointment: Appointment) -> None:
    client = await database_sync_to_async(signed_in)(alice)
    _socket, connected = await open_socket(client, appointment.pk, origin=(b"origin", b"https://evil.example"))
    assert not connected


async def test_it_refuses_outside_the_window_and_says_when_it_opens(
    alice: User, appointment: Appointment, clock: time_machine.Traveller
) -> None:
    clock.move_to(OPENS - timedelta(seconds=1))
    code, farewell = await refusal(alice, appointment.pk)
    assert code == 4403
    assert farewell is not None
    assert farewell["code"] == "too_early"
    assert farewell["opens_at"] == "2026-12-02T00:45:00+00:00"
    assert farewell["closes_at"] == "2026-12-02T02:30:00+00:00"

    clock.move_to(CLOSES)
    code, farewell = await refusal(alice, appointment.pk)
    assert (code, farewell and farewell["code"]) == (4403, "too_late")

    clock.move_to(OPENS)
    socket = await join(alice, appointment.pk)
    await socket.close()


async def test_it_refuses_a_cancelled_appointment(alice: User, appointment: Appointment) -> None:
    await database_sync_to_async(appointment_cancel)(appointment=appointment, by=alice, staff=True, reason="ill")
    assert await refusal(alice, appointment.pk) == (4404, None)


async def test_it_answers_malformed_messages_with_errors_and_stays_open(alice: User, appointment: Appointment) -> None:
    socket = await join(alice, appointment.pk)
    for text, code in [
        ("not json at all", "bad_json"),
        ('{"type": "chat", "body": NaN}', "bad_json"),
        ("[1, 2]", "bad_message"),
        ('{"body": "hi"}', "bad_message"),
        ('{"type": "shutdown"}', "unknown_type"),
        ('{"type": "chat", "body": 5}', "bad_fields"),
        ('{"type": "signal"}', "bad_fields"),
        ('{"type": "signal", "description": {"type": "offer"}}', "bad_fields"),
        ('{"type": "media", "mode": "hologram"}', "bad_media"),
        ('{"type": "check", "result": {"recommendation": "video", "rtt_ms": -1}}', "bad_check"),
        ('{"type": "sync", "chat_after": "x"}', "bad_fields"),
    ]:
        await socket.send_text(text)
        error = await socket.expect("error")
        assert error["code"] == code, (text, error)
        assert error["message"]
    await socket.communicator.send_to(bytes_data=b"\x00\x01")
    assert (await socket.expect("error"))["code"] == "bad_message"
    await socket.send({"type": "sync"})
    await socket.expect("sync")
    await socket.close()


async def test_it_refuses_an_oversize_message_and_keeps_the_socket(alice: User, appointment: Appointment) -> None:
    socket = await join(alice, appointment.pk)
    await socket.send({"type": "chat", "body": "x" * 70_000})
    assert (await socket.expect("error"))["code"] == "too_big"
    await socket.send({"type": "chat", "body": "Still here"})
    assert (await socket.expect("chat"))["body"] == "Still here"
    assert await ChatMessage.objects.acount() == 1
    await socket.close()


async def test_it_closes_a_socket_that_keeps_flooding(alice: User, appointment: Appointment, settings: Any) -> None:
    settings.CONSULT_WS_RATE_PER_S = 1
    settings.CONSULT_WS_RATE_BURST = 5
    socket = await join(alice, appointment.pk)
    for _ in range(40):
        await socket.send_text("x")
    codes = []
    while True:
        output = await socket.communicator.receive_output(timeout=3)
        if output["type"] == "websocket.close":
            break
        codes.append(json.loads(output["text"])["code"])
    assert output["code"] == 4429
    assert codes[:5] == ["bad_json"] * 5  # the burst goes through
    assert "rate_limited" in codes
    await socket.communicator.disconnect()


async def test_it_relays_signals_to_the_other_side_and_never_back(
    alice: User, bob: User, appointment: Appointment
) -> None:
    patient, doctor = await _started(alice, bob, appointment)
    await doctor.send({"type": "signal", "description": OFFER})
    relayed = await patient.expect("signal")
    assert relayed == {"type": "signal", "from": "doctor", "description": OFFER}
    await patient.send({"type": "signal", "candidate": CANDIDATE})
    assert await doctor.expect("signal") == {"type": "signal", "from": "patient", "candidate": CANDIDATE}
    await patient.send({"type": "signal", "candidate": None})  # end of candidates
    assert (await doctor.expect("signal"))["candidate"] is None
    assert await patient.silent()
    assert await doctor.silent()
    await patient.close()
    await doctor.close()


async def test_it_refuses_signals_until_the_doctor_starts(alice: User, bob: User, appointment: Appointment) -> None:
    patient = await join(alice, appointment.pk)
    doctor = await join(bob, appointment.pk)
    await patient.expect("peer")
    await doctor.send({"type": "signal", "description": OFFER})
    assert (await doctor.expect("error"))["code"] == "not_started"
    assert await patient.silent()
    await patient.close()
    await doctor.close()


async def test_it_keeps_chat_and_delivers_the_servers_copy_to_both(
    alice: User, bob: User, appointment: Appointment
) -> None:
    patient = await join(alice, appointment.pk)
    doctor = await join(bob, appointment.pk)
    await patient.expect("peer")
    await patient.send({"type": "chat", "body": "  I am in the waiting room  "})
    acknowledged = await patient.expect("chat")
    delivered = await doctor.expect("chat")
    assert acknowledged == delivered
    assert (delivered["from"], delivered["name"], delivered["body"]) == ("patient", "Alice", "I am in the waiting room")
    stored = await ChatMessage.objects.aget(pk=delivered["id"])
    assert (stored.sender_id, stored.body) == (alice.pk, "I am in the waiting room")
    await doctor.send({"type": "chat", "body": "   "})
    assert (await doctor.expect("error"))["code"] == "chat_empty"
    assert await patient.silent()
    await patient.close()
    await doctor.close()


async def test_a_second_socket_replaces_the_first(alice: User, bob: User, appointment: Appointment) -> None:
    doctor = await join(bob, appointment.pk)
    first = await join(alice, appointment.pk)
    await doctor.expect("peer")
    second = await join(alice, appointment.pk)
    assert await first.expect("replaced") == {"type": "replaced"}
    assert await first.closed_with() == 4409
    again = await doctor.expect("peer")
    assert (again["event"], again["role"]) == ("joined", "patient")
    assert await doctor.silent()  # the replaced socket's goodbye is not a departure
    assert await ConsultPresence.objects.filter(user=alice).acount() == 1
    await second.send({"type": "chat", "body": "Back"})
    await second.expect("chat")
    await second.close()
    await doctor.close()


async def test_signing_out_closes_the_sockets_of_that_session(alice: User, bob: User, appointment: Appointment) -> None:
    client = await database_sync_to_async(signed_in)(alice)
    patient = await join(client, appointment.pk)
    doctor = await join(bob, appointment.pk)
    await patient.expect("peer")
    await database_sync_to_async(client.logout)()
    assert await patient.closed_with() == 4401
    assert (await doctor.expect("peer"))["event"] == "left"
    assert await refusal(None, appointment.pk) == (4401, None)
    await doctor.close()


async def test_a_reconnect_syncs_chat_since_the_last_message_and_who_is_there(
    alice: User, bob: User, appointment: Appointment
) -> None:
    patient = await join(alice, appointment.pk)
    doctor = await join(bob, appointment.pk)
    await patient.expect("peer")
    ids = []
    for body in ("one", "two", "three"):
        await doctor.send({"type": "chat", "body": body})
        ids.append((await doctor.expect("chat"))["id"])
        await patient.expect("chat")
    await patient.close()
    await doctor.expect("peer")

    back = await join(alice, appointment.pk, query=f"chat_after={ids[0]}")
    assert [m["body"] for m in back.welcome["chat"]] == ["two", "three"]
    assert back.welcome["chat_more"] is False
    assert [p["role"] for p in back.welcome["present"]] == ["doctor"]
    await back.send({"type": "sync", "chat_after": ids[1]})
    synced = await back.expect("sync")
    assert [m["id"] for m in synced["chat"]] == [ids[2]]
    assert synced["consult"]["state"] == "waiting"
    await back.close()
    await doctor.close()


async def test_the_doctor_starts_and_ends_and_the_appointment_is_completed_with_its_duration(
    alice: User, bob: User, appointment: Appointment, clock: time_machine.Traveller
) -> None:
    clock.move_to(appointment.starts_at)
    patient, doctor = await _started(alice, bob, appointment)
    clock.move_to(appointment.starts_at + timedelta(minutes=12, seconds=30))
    await doctor.send({"type": "end"})
    ended = await patient.expect("ended")
    assert (ended["duration_s"], ended["by"]) == (750, "doctor")
    assert await patient.closed_with() == 4410
    assert (await doctor.expect("ended"))["duration_s"] == 750
    assert await doctor.closed_with() == 4410

    done = await Appointment.objects.aget(pk=appointment.pk)
    assert (done.status, done.duration_s) == (AppointmentStatus.COMPLETED, 750)
    kinds = [k async for k in ConsultEvent.objects.order_by("id").values_list("kind", flat=True)]
    assert kinds == ["opened", "joined", "joined", "started", "ended", "left", "left"]
    code, farewell = await refusal(alice, appointment.pk)
    assert (code, farewell and farewell["code"]) == (4410, "ended")


async def test_the_patient_can_neither_start_nor_end(alice: User, bob: User, appointment: Appointment) -> None:
    patient = await join(alice, appointment.pk)
    await patient.send({"type": "start"})
    assert (await patient.expect("error"))["code"] == "doctor_only"
    await patient.close()
    patient, doctor = await _started(alice, bob, appointment)
    await patient.send({"type": "end"})
    assert (await patient.expect("error"))["code"] == "doctor_only"
    assert await doctor.silent()
    consult = await Consult.objects.aget(appointment=appointment)
    assert consult.state == "in_progress"
    assert (await Appointment.objects.aget(pk=appointment.pk)).status == AppointmentStatus.BOOKED
    await patient.close()
    await doctor.close()


async def test_the_doctor_is_told_the_check_result_and_media_changes_reach_the_other_side(
    alice: User, bob: User, appointment: Appointment
) -> None:
    patient = await join(alice, appointment.pk)
    doctor = await join(bob, appointment.pk)
    await patient.expect("peer")
    result = {"rtt_ms": 320, "loss_pct": 4.5, "bitrate_kbps": 140, "relay_ok": None, "recommendation": "audio"}
    await patient.send({"type": "check", "result": result})
    told = await doctor.expect("check")
    assert told["result"]["recommendation"] == "audio"
    assert told["result"]["checked_at"] == "2026-12-02T00:55:00+00:00"
    assert (await patient.expect("check"))["result"] == told["result"]
    await doctor.send({"type": "check", "result": result})
    assert (await doctor.expect("error"))["code"] == "patient_only"

    await doctor.send({"type": "media", "mode": "audio", "reason": "because"})
    assert (await doctor.expect("error"))["code"] == "bad_fields"
    await doctor.send({"type": "media", "mode": "audio"})
    assert await patient.expect("media") == {"type": "media", "mode": "audio", "by": "doctor", "reason": "manual"}
    assert await doctor.silent()
    await patient.send({"type": "media", "mode": "video"})
    await doctor.expect("media")
    await patient.send({"type": "media", "mode": "audio", "reason": "weak_link"})
    assert (await doctor.expect("media"))["reason"] == "weak_link"
    await patient.send({"type": "quality", "quality": {"rtt_ms": 400, "loss_pct": 2, "bitrate_kbps": 90}})
    quality = await doctor.expect("peer")
    assert (quality["event"], quality["role"], quality["quality"]["bitrate_kbps"]) == ("quality", "patient", 90.0)

    doctor_again = await join(bob, appointment.pk)
    assert doctor_again.welcome["check"]["recommendation"] == "audio"
    assert doctor_again.welcome["consult"]["media_mode"] == "audio"
    assert doctor_again.welcome["present"][0]["quality"]["rtt_ms"] == 400.0
    await doctor.closed_with()
    await patient.expect("peer")  # the doctor's new socket
    await patient.close()
    await doctor_again.close()


async def test_an_open_socket_keeps_its_presence_fresh(
    alice: User, bob: User, appointment: Appointment, clock: time_machine.Traveller, settings: Any
) -> None:
    settings.CONSULT_PRESENCE_REFRESH_S = 0.05
    patient = await join(alice, appointment.pk)
    later = IN_WINDOW + timedelta(minutes=10)
    clock.move_to(later)
    for _ in range(60):  # the refresher runs every 0.05 s: give it up to 3 s
        if await ConsultPresence.objects.filter(user=alice, seen_at=later).aexists():
            break
        await asyncio.sleep(0.05)
    waiting = await database_sync_to_async(consults_waiting_for)(doctor=bob, now=later)
    assert [w.name for w in waiting] == ["Alice"]
    await patient.close()
