"""Two Daphne processes share consult rooms through channels-redis: the
patient's socket on one process and the doctor's on the other see each
other arrive, relay signals both ways, and chat (stored once, in the shared
database). The sockets are real WebSockets over TCP, with the session cookie
and Origin a browser sends."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from apps.accounts.models import User
from apps.clinics.models import Clinic
from apps.consults.models import ChatMessage
from apps.scheduling.models import Appointment
from telemed.channel_layers import SOCKET_TIMEOUT_S, redis_channel_layer
from tests.browser.consult_helpers import daphne_server, everyone_left, open_video_appointment, session_cookie
from tests.consults.websocket_client import WebSocket
from tests.services import redis_url

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

WAIT_S = 10  # the longest a test waits for a message that must come
IDLE_S = 12  # longer than the layer's blocking read plus redis-py's default timeout


@pytest.fixture(scope="module")
def servers(django_db_setup: None, django_db_blocker: Any) -> Iterator[tuple[str, str]]:
    """Two Daphne processes on one Redis (a key prefix of their own), with
    the product's channel-layer configuration, and the test database."""
    layers = {
        "default": redis_channel_layer(
            url=redis_url(), max_connections=1000, capacity=1000, prefix=f"test-cross-{uuid.uuid4().hex[:8]}"
        )
    }
    with ExitStack() as stack:
        a = stack.enter_context(daphne_server(django_db_blocker, CHANNEL_LAYERS=layers))
        b = stack.enter_context(daphne_server(django_db_blocker, CHANNEL_LAYERS=layers))
        yield a, b


class RoomSocket:
    """A participant's consult socket that keeps every message it gets."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.seen: list[dict[str, Any]] = []

    @classmethod
    async def connect(cls, server: str, appointment_id: int, cookie: str) -> RoomSocket:
        url = server.replace("http://", "ws://") + f"/ws/consults/{appointment_id}/"
        websocket = await WebSocket.connect(url, headers={"Origin": server, "Cookie": f"sessionid={cookie}"})
        return cls(websocket)

    async def send(self, message: dict[str, Any]) -> None:
        await self.websocket.send_text(json.dumps(message))

    async def expect(self, message_type: str) -> dict[str, Any]:
        """The next message of this type (others in between are kept in ``seen``)."""
        while True:
            message: dict[str, Any] = json.loads(await asyncio.wait_for(self.websocket.receive_text(), WAIT_S))
            self.seen.append(message)
            if message["type"] == message_type:
                return message


@pytest.fixture
def appointment(alice: User, bob: User, clinic: Clinic) -> Appointment:
    return open_video_appointment(alice, bob, clinic)


def test_it_relays_signals_and_chat_between_two_processes(
    servers: tuple[str, str], alice: User, bob: User, appointment: Appointment
) -> None:
    process_a, process_b = servers
    alice_cookie, bob_cookie = session_cookie(alice), session_cookie(bob)
    offer = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}
    candidate = {
        "candidate": "candidate:1 1 udp 2122260223 192.0.2.7 54321 typ host",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
    }

    async def call() -> None:
        patient = await RoomSocket.connect(process_a, appointment.pk, alice_cookie)
        welcome = await patient.expect("welcome")
        assert (welcome["you"]["role"], welcome["present"]) == ("patient", [])

        doctor = await RoomSocket.connect(process_b, appointment.pk, bob_cookie)
        welcome = await doctor.expect("welcome")
        assert welcome["you"]["role"] == "doctor"
        assert [p["role"] for p in welcome["present"]] == ["patient"]  # from the shared database
        joined = await patient.expect("peer")  # across processes, through Redis
        assert (joined["event"], joined["role"]) == ("joined", "doctor")

        await doctor.send({"type": "start"})
        assert (await patient.expect("started"))["by"] == "doctor"
        await doctor.expect("started")

        await patient.send({"type": "signal", "description": offer})
        relayed = await doctor.expect("signal")
        assert (relayed["from"], relayed["description"]) == ("patient", offer)
        await doctor.send({"type": "signal", "candidate": candidate})
        relayed = await patient.expect("signal")
        assert (relayed["from"], relayed["candidate"]) == ("doctor", candidate)

        await patient.send({"type": "chat", "body": "Can you hear me?"})
        chat = await doctor.expect("chat")
        assert (chat["from"], chat["body"]) == ("patient", "Can you hear me?")
        assert (await patient.expect("chat"))["id"] == chat["id"]  # the acknowledgement
        await doctor.send({"type": "chat", "body": "Yes, clearly"})
        assert (await patient.expect("chat"))["body"] == "Yes, clearly"
        await doctor.expect("chat")

        # Nothing was echoed: each side got only the other's signal.
        assert [m["from"] for m in patient.seen if m["type"] == "signal"] == ["doctor"]
        assert [m["from"] for m in doctor.seen if m["type"] == "signal"] == ["patient"]
        assert not [m for m in patient.seen + doctor.seen if m["type"] == "error"]
        await doctor.websocket.close()
        left = await patient.expect("peer")
        assert (left["event"], left["role"]) == ("left", "doctor")
        await patient.websocket.close()

    asyncio.run(call())
    # Both servers recorded the leaving (the database is clean before the next test).
    assert everyone_left(appointment)
    stored = ChatMessage.objects.filter(consult__appointment=appointment).order_by("id")
    assert [(m.sender_id, m.body) for m in stored] == [(alice.pk, "Can you hear me?"), (bob.pk, "Yes, clearly")]


def test_idle_sockets_stay_open_and_relay_afterwards(
    servers: tuple[str, str], alice: User, bob: User, appointment: Appointment
) -> None:
    """A consult socket waits without a message for longer than the channel
    layer's blocking read (5 s) and redis-py's default socket timeout (5 s):
    with those defaults the server closed it (1011) after a few seconds."""
    process_a, process_b = servers
    alice_cookie, bob_cookie = session_cookie(alice), session_cookie(bob)
    assert SOCKET_TIMEOUT_S > IDLE_S > 5 + 5

    async def call() -> None:
        patient = await RoomSocket.connect(process_a, appointment.pk, alice_cookie)
        await patient.expect("welcome")
        doctor = await RoomSocket.connect(process_b, appointment.pk, bob_cookie)
        await doctor.expect("welcome")
        await patient.expect("peer")
        await doctor.send({"type": "start"})
        await patient.expect("started")
        await doctor.expect("started")
        await asyncio.sleep(IDLE_S)  # a quiet consult: nobody sends anything
        await patient.send({"type": "signal", "candidate": None})
        relayed = await doctor.expect("signal")
        assert (relayed["from"], relayed["candidate"]) == ("patient", None)
        await doctor.send({"type": "chat", "body": "Still there?"})
        assert (await patient.expect("chat"))["body"] == "Still there?"
        assert not [
            m for m in patient.seen + doctor.seen if m["type"] in {"error", "peer"} and m.get("event") != "joined"
        ]
        await doctor.websocket.close()
        await patient.websocket.close()

    asyncio.run(call())
    assert everyone_left(appointment)
