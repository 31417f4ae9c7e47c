"""The doctor's live waiting room, ``/ws/consults/waiting/``, through the
real ASGI application (origin check, session authentication, routing), on
the in-memory channel layer and on channels-redis."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.test import Client

from apps.accounts.middleware import SESSION_LOGIN_AT
from apps.accounts.models import User
from apps.clinics.models import Clinic, Membership
from apps.consults.models import Consult
from apps.consults.services import consult_join
from apps.scheduling.models import Appointment
from telemed.asgi import application
from tests.conftest import signed_in
from tests.consults.conftest import IN_WINDOW, ORIGIN, WAIT_S, Socket, join
from tests.factories import make_doctor

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("channel_layer")]

PATH = "/ws/consults/waiting/"
CHECK = {"rtt_ms": 420, "loss_pct": 6, "bitrate_kbps": 90, "relay_ok": None, "recommendation": "audio"}


@pytest.fixture(autouse=True)
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(IN_WINDOW, tick=False) as traveller:
        yield traveller


def _cookie(client: Client) -> str:
    return str(client.cookies["sessionid"].value)


async def _open(cookie: str | None, *, origin: tuple[bytes, bytes] = ORIGIN) -> tuple[Socket, bool]:
    headers = [origin]
    if cookie is not None:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    communicator = WebsocketCommunicator(application, PATH, headers=headers)
    connected, _code = await communicator.connect(timeout=WAIT_S)
    return Socket(communicator), connected


async def watch(user_or_client: User | Client) -> Socket:
    """A doctor's accepted waiting-room socket, its first list received (in ``welcome``)."""
    client = (
        user_or_client
        if isinstance(user_or_client, Client)
        else await database_sync_to_async(signed_in)(user_or_client)
    )
    socket, connected = await _open(_cookie(client))
    assert connected
    socket.welcome = await socket.expect("waiting")
    return socket


async def refused_with(user: User | None) -> int:
    """The close code of a refused waiting-room socket (nothing is sent before it)."""
    client = None if user is None else await database_sync_to_async(signed_in)(user)
    socket, connected = await _open(None if client is None else _cookie(client))
    assert connected  # accepted, then closed: browsers see the code only so
    output = await socket.communicator.receive_output(timeout=WAIT_S)
    assert output["type"] == "websocket.close", output  # no list, no names
    await socket.communicator.disconnect()
    return int(output["code"])


async def test_it_sends_the_list_on_connect_and_each_change_as_it_happens(
    alice: User, bob: User, appointment: Appointment
) -> None:
    dashboard = await watch(bob)
    assert dashboard.welcome == {"type": "waiting", "patients": []}

    patient = await join(alice, appointment.pk)
    arrived = await dashboard.expect("changed")
    assert arrived == {
        "type": "changed",
        "appointment_id": appointment.pk,
        "present": True,
        "name": "Alice",
        "since": "2026-12-02T00:55:00+00:00",
        "since_label": "08:55",  # Bob's zone, Shanghai
        "state": "waiting",
        "check": None,
        "url": f"/consults/{appointment.pk}/",
    }

    await patient.send({"type": "check", "result": CHECK})
    checked = await dashboard.expect("changed")
    assert checked["present"] is True
    assert checked["check"]["recommendation"] == "audio"
    assert checked["check"]["rtt_ms"] == 420.0
    assert checked["since_label"] == "08:55"  # still waiting since she arrived

    # A page that reconnects now gets her in the list.
    again = await watch(bob)
    [listed] = again.welcome["patients"]
    assert {k: listed[k] for k in ("appointment_id", "name", "since_label", "state")} == {
        "appointment_id": appointment.pk,
        "name": "Alice",
        "since_label": "08:55",
        "state": "waiting",
    }
    assert listed["check"]["recommendation"] == "audio"

    await patient.close()
    for socket in (dashboard, again):
        left = await socket.expect("changed")
        assert left == {"type": "changed", "appointment_id": appointment.pk, "present": False, "state": "waiting"}
    assert (await watch(bob)).welcome["patients"] == []
    await dashboard.close()
    await again.close()


async def test_it_shows_when_the_consult_starts_and_ends(alice: User, bob: User, appointment: Appointment) -> None:
    dashboard = await watch(bob)
    patient = await join(alice, appointment.pk)
    await dashboard.expect("changed")
    doctor = await join(bob, appointment.pk)
    await doctor.send({"type": "start"})
    started = await dashboard.expect("changed")
    assert (started["present"], started["state"], started["name"]) == (True, "in_progress", "Alice")
    await doctor.send({"type": "end"})
    ended = await dashboard.expect("changed")
    assert (ended["present"], ended["state"]) == (False, "ended")
    assert await patient.closed_with() == 4410
    assert await doctor.closed_with() == 4410
    await dashboard.close()


async def test_it_shows_the_time_in_the_doctors_own_zone(alice: User, bob: User, appointment: Appointment) -> None:
    await User.objects.filter(pk=bob.pk).aupdate(timezone="Europe/London")
    patient = await join(alice, appointment.pk)
    dashboard = await watch(await User.objects.aget(pk=bob.pk))
    [listed] = dashboard.welcome["patients"]
    assert listed["since_label"] == "00:55"
    await patient.close()
    assert (await dashboard.expect("changed"))["present"] is False
    await dashboard.close()


async def test_another_doctor_never_hears_of_bobs_patients(
    alice: User, bob: User, clinic: Clinic, appointment: Appointment
) -> None:
    dave = await database_sync_to_async(make_doctor)(clinic=clinic, full_name="Dave", email="dave@example.org")
    patient = await join(alice, appointment.pk)
    others = await watch(dave)
    assert others.welcome["patients"] == []
    bobs = await watch(bob)
    assert [p["name"] for p in bobs.welcome["patients"]] == ["Alice"]
    await patient.send({"type": "check", "result": CHECK})
    await bobs.expect("changed")
    await patient.close()
    await bobs.expect("changed")
    assert await others.silent()
    await others.close()
    await bobs.close()


async def test_it_refuses_anyone_but_a_doctor(
    alice: User, carol: User, mallory: User, clinic: Clinic, appointment: Appointment
) -> None:
    patient = await join(alice, appointment.pk)  # someone is waiting: nobody else may learn it
    assert await refused_with(None) == 4401
    assert await refused_with(mallory) == 4403
    assert await refused_with(alice) == 4403  # a patient
    assert await refused_with(carol) == 4403  # the clinic's admin: not a doctor
    no_mfa = await database_sync_to_async(make_doctor)(clinic=clinic, mfa=False, full_name="Eve")
    assert await refused_with(no_mfa) == 4403  # a doctor must have enrolled in MFA, as for the dashboard
    await patient.close()


async def test_it_refuses_a_foreign_origin(bob: User) -> None:
    client = await database_sync_to_async(signed_in)(bob)
    _socket, connected = await _open(_cookie(client), origin=(b"origin", b"https://evil.example"))
    assert not connected


async def test_signing_out_closes_the_sockets_of_that_session_only(bob: User) -> None:
    client = await database_sync_to_async(signed_in)(bob)
    cookie = _cookie(client)
    dashboard = await watch(client)
    elsewhere = await watch(bob)  # another device's session
    await database_sync_to_async(client.logout)()
    assert await dashboard.closed_with() == 4401
    assert await elsewhere.silent()
    await elsewhere.send({"type": "sync"})
    await elsewhere.expect("waiting")
    await elsewhere.close()
    stale, connected = await _open(cookie)  # the old cookie is worth nothing now
    assert connected
    assert await stale.closed_with() == 4401


async def test_it_answers_malformed_and_unknown_messages_with_errors_and_stays_open(bob: User) -> None:
    dashboard = await watch(bob)
    for text, code in [
        ("not json", "bad_json"),
        ("[1]", "bad_message"),
        ('{"kind": "sync"}', "bad_message"),
        ('{"type": "start"}', "unknown_type"),  # a room message: not here
        ('{"type": "chat", "body": "hi"}', "unknown_type"),
        ('{"type": "drop_tables"}', "unknown_type"),
    ]:
        await dashboard.send_text(text)
        error = await dashboard.expect("error")
        assert error["code"] == code, (text, error)
        assert error["message"]
    await dashboard.communicator.send_to(bytes_data=b"\x00")
    assert (await dashboard.expect("error"))["code"] == "bad_message"
    await dashboard.send({"type": "sync", "padding": "x" * 70_000})
    assert (await dashboard.expect("error"))["code"] == "too_big"
    await dashboard.send({"type": "sync"})
    assert await dashboard.expect("waiting") == {"type": "waiting", "patients": []}
    await dashboard.close()


async def test_its_errors_are_in_the_doctors_language(bob: User) -> None:
    await User.objects.filter(pk=bob.pk).aupdate(language="zh-hans")
    dashboard = await watch(await User.objects.aget(pk=bob.pk))
    await dashboard.send_text("not json")
    error = await dashboard.expect("error")
    assert error["code"] == "bad_json"
    assert error["message"] != "The message is not valid JSON."
    await dashboard.close()


async def test_it_closes_a_socket_that_keeps_flooding(bob: User, settings: Any) -> None:
    settings.CONSULT_WS_RATE_PER_S = 1
    settings.CONSULT_WS_RATE_BURST = 5
    dashboard = await watch(bob)
    for _ in range(40):
        await dashboard.send({"type": "sync"})
    seen = []
    while True:
        output = await dashboard.communicator.receive_output(timeout=WAIT_S)
        if output["type"] == "websocket.close":
            break
        message = json.loads(output["text"])
        seen.append(message.get("code", message["type"]))
    assert output["code"] == 4429
    assert seen[:5] == ["waiting"] * 5  # the burst is answered
    assert "rate_limited" in seen
    await dashboard.communicator.disconnect()


async def test_it_resends_the_list_when_it_went_stale_and_closes_when_no_longer_a_doctor(
    alice: User, bob: User, consult: Consult, clock: time_machine.Traveller, settings: Any
) -> None:
    settings.CONSULT_PRESENCE_REFRESH_S = 0.05
    # Alice's socket died without a goodbye (a server crash): her presence
    # stays until it is no longer refreshed.
    await database_sync_to_async(consult_join)(consult=consult, user=alice, channel_name="gone")
    dashboard = await watch(bob)
    assert [p["name"] for p in dashboard.welcome["patients"]] == ["Alice"]
    assert await dashboard.silent()  # unchanged: nothing resent
    clock.move_to(IN_WINDOW + timedelta(minutes=5))
    assert await dashboard.expect("waiting") == {"type": "waiting", "patients": []}

    await Membership.objects.filter(user=bob).aupdate(is_active=False)
    assert await dashboard.closed_with() == 4403


def _signed_in_long_ago(client: Client) -> None:
    session = SessionStore(session_key=_cookie(client))
    session[SESSION_LOGIN_AT] = time.time() - 13 * 3600
    session.save()


@pytest.mark.parametrize("how", ["ended from another device", "past the staff session's lifetime"])
async def test_it_closes_when_the_session_no_longer_holds(bob: User, settings: Any, how: str) -> None:
    settings.CONSULT_PRESENCE_REFRESH_S = 0.05
    settings.STAFF_SESSION_MAX_S = 12 * 3600
    client = await database_sync_to_async(signed_in)(bob)
    dashboard = await watch(client)
    assert await dashboard.silent()  # refreshed a few times: still open
    if how == "ended from another device":
        # "My signed-in devices" deletes the session; no sign-out signal is sent.
        await Session.objects.filter(session_key=_cookie(client)).adelete()
    else:
        await database_sync_to_async(_signed_in_long_ago)(client)
    assert await dashboard.closed_with() == 4401
