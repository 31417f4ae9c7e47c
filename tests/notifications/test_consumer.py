"""Live in-app notifications through the real ASGI application."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from apps.accounts.models import User
from apps.notifications.models import Category, Channel
from apps.notifications.services import notification_send
from telemed.asgi import application
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://localhost")


def _cookie_for(user: User) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


async def _connect(user: User | None, origin: tuple[bytes, bytes] = ORIGIN) -> tuple[WebsocketCommunicator, bool, Any]:
    headers = [origin]
    if user is not None:
        headers.append(await database_sync_to_async(_cookie_for)(user))
    communicator = WebsocketCommunicator(application, "/ws/notifications/", headers=headers)
    connected, code = await communicator.connect()
    return communicator, connected, code


async def test_the_user_receives_a_live_notification_and_nobody_else_does() -> None:
    alice = await database_sync_to_async(PatientFactory)(email="alice@example.org", language="en")
    mallory = await database_sync_to_async(PatientFactory)(email="mallory@example.org")
    alice_socket, connected, _ = await _connect(alice)
    assert connected
    assert await alice_socket.receive_json_from() == {"type": "unread", "unread": 0}
    mallory_socket, connected, _ = await _connect(mallory)
    assert connected
    await mallory_socket.receive_json_from()

    await database_sync_to_async(notification_send)(
        recipient=alice,
        category=Category.ACCOUNT,
        template="account/welcome",
        context={"link": "/me/consent/"},
        idempotency_key="live-1",
        channels=[Channel.IN_APP],
    )
    message = await alice_socket.receive_json_from(timeout=5)
    assert message["type"] == "notification"
    assert message["title"] == "Welcome to Telemed"
    assert message["url"] == "/me/consent/"
    assert message["unread"] == 1
    assert await mallory_socket.receive_nothing(timeout=1)
    await alice_socket.disconnect()
    await mallory_socket.disconnect()


async def test_a_visitor_is_refused() -> None:
    _socket, connected, code = await _connect(None)
    assert not connected
    assert code == 4401


async def test_a_foreign_origin_is_refused() -> None:
    alice = await database_sync_to_async(PatientFactory)(email="alice@example.org")
    _socket, connected, _ = await _connect(alice, origin=(b"origin", b"https://evil.example"))
    assert not connected


async def test_the_socket_answers_anything_sent_to_it_with_an_error() -> None:
    alice = await database_sync_to_async(PatientFactory)(email="alice@example.org")
    socket, _connected, _ = await _connect(alice)
    await socket.receive_json_from()
    # Malformed input closes nothing and crashes nothing.
    await socket.send_to(text_data="not json at all")
    assert (await socket.receive_json_from())["type"] == "error"
    await socket.send_json_to({"type": "mark_read"})
    assert (await socket.receive_json_from())["type"] == "error"
    await socket.disconnect()


async def test_embedded_mode_finds_what_a_worker_delivered(settings: Any) -> None:
    """In embedded mode a worker process can't reach Daphne's in-memory layer:
    the socket finds delivered rows itself."""
    from django.utils import timezone

    from apps.notifications.models import Notification

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.NOTIFICATIONS_EMBEDDED_POLL_S = 0.2
    alice = await database_sync_to_async(PatientFactory)(email="alice@example.org", language="en")
    socket, connected, _ = await _connect(alice)
    assert connected
    await socket.receive_json_from()
    # As another process would leave it: sent, without a message on this layer.
    await database_sync_to_async(Notification.objects.create)(
        recipient=alice,
        category=Category.ACCOUNT,
        channel=Channel.IN_APP,
        template="account/welcome",
        context={},
        language="en",
        idempotency_key="from-worker",
        status="sent",
        due_at=timezone.now(),
        sent_at=timezone.now(),
    )
    message = await socket.receive_json_from(timeout=3)
    assert message["title"] == "Welcome to Telemed"
    assert await socket.receive_nothing(timeout=0.6)  # once, not on every look
    await socket.disconnect()
