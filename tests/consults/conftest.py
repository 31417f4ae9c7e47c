"""Consult test data: Alice's video appointment with Bob tomorrow at 09:00
(Shanghai), whose room is open from 08:45 until 10:30, and sockets to it
through the real ASGI application."""

from __future__ import annotations

import json
import zoneinfo
from datetime import datetime
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from apps.accounts.models import User
from apps.clinics.models import Clinic
from apps.consults.models import Consult
from apps.consults.services import consult_open_for
from apps.scheduling.models import Appointment
from telemed.asgi import application
from tests.conftest import signed_in
from tests.scheduling.conftest import TOMORROW_9, book, hours  # noqa: F401  # Bob's hours, a fixture

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
OPENS = datetime(2026, 12, 2, 8, 45, tzinfo=SHANGHAI)
IN_WINDOW = datetime(2026, 12, 2, 8, 55, tzinfo=SHANGHAI)
CLOSES = datetime(2026, 12, 2, 10, 30, tzinfo=SHANGHAI)
ORIGIN = (b"origin", b"http://localhost")
WAIT_S = 3  # the longest a test waits for a message that must come


@pytest.fixture
def appointment(alice: User, bob: User, clinic: Clinic, hours: Any) -> Appointment:  # noqa: F811
    """Alice's video appointment with Bob, 09:00-09:30 tomorrow."""
    return book(alice, bob, clinic, TOMORROW_9, mode="video")


@pytest.fixture
def consult(appointment: Appointment) -> Consult:
    return consult_open_for(appointment=appointment)


class Socket:
    """One client's consult socket, with the welcome it got."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator
        self.welcome: dict[str, Any] = {}

    async def send(self, message: dict[str, Any]) -> None:
        await self.communicator.send_json_to(message)

    async def send_text(self, text: str) -> None:
        await self.communicator.send_to(text_data=text)

    async def receive(self) -> dict[str, Any]:
        output = await self.communicator.receive_output(timeout=WAIT_S)
        assert output["type"] == "websocket.send", output
        message: dict[str, Any] = json.loads(output["text"])
        return message

    async def expect(self, message_type: str) -> dict[str, Any]:
        message = await self.receive()
        assert message["type"] == message_type, message
        return message

    async def closed_with(self) -> int:
        """The code the server closed the socket with (messages before it are skipped)."""
        while True:
            output = await self.communicator.receive_output(timeout=WAIT_S)
            if output["type"] == "websocket.close":
                await self.communicator.disconnect()
                return int(output["code"])

    async def silent(self) -> bool:
        return bool(await self.communicator.receive_nothing(timeout=0.3))

    async def close(self) -> None:
        await self.communicator.disconnect()


async def open_socket(
    client: Client | None, appointment_id: int, *, origin: tuple[bytes, bytes] = ORIGIN, query: str = ""
) -> tuple[Socket, bool]:
    headers = [origin]
    if client is not None:
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    path = f"/ws/consults/{appointment_id}/" + (f"?{query}" if query else "")
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _code = await communicator.connect(timeout=WAIT_S)
    return Socket(communicator), connected


async def join(user_or_client: User | Client, appointment_id: int, *, query: str = "") -> Socket:
    """A participant's accepted socket, its welcome received."""
    client = (
        user_or_client
        if isinstance(user_or_client, Client)
        else await database_sync_to_async(signed_in)(user_or_client)
    )
    socket, connected = await open_socket(client, appointment_id, query=query)
    assert connected
    socket.welcome = await socket.expect("welcome")
    return socket


async def refusal(user: User | None, appointment_id: int) -> tuple[int, dict[str, Any] | None]:
    """The close code of a refused socket, and the error it got first, if any."""
    client = None if user is None else await database_sync_to_async(signed_in)(user)
    socket, connected = await open_socket(client, appointment_id)
    assert connected  # accepted, then closed: browsers see the code only so
    output = await socket.communicator.receive_output(timeout=WAIT_S)
    farewell = None
    if output["type"] == "websocket.send":
        farewell = json.loads(output["text"])
        output = await socket.communicator.receive_output(timeout=WAIT_S)
    assert output["type"] == "websocket.close", output
    await socket.communicator.disconnect()
    return int(output["code"]), farewell
