"""A new alert reaches the doctor's open dashboard without a reload: the
reading's alert notifies the patient's doctors in the app (live, over the
notification socket the dashboard listens to), and the dashboard re-reads
its triage queue. Through the real ASGI application, on the in-memory
channel layer and on channels-redis."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import User
from apps.clinics.models import Clinic
from apps.vitals.services import reading_record
from telemed.asgi import application
from tests.care.dashboard_data import CRISIS, appointment
from tests.conftest import signed_in
from tests.factories import make_doctor

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://localhost")
WAIT_S = 5


async def _notification_socket(client: Client | None) -> tuple[WebsocketCommunicator, bool, Any]:
    headers = [ORIGIN]
    if client is not None:
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    communicator = WebsocketCommunicator(application, "/ws/notifications/", headers=headers)
    connected, code = await communicator.connect(timeout=WAIT_S)
    return communicator, connected, code


def _triage_page(client: Client) -> str:
    response = client.get(reverse("care:triage"), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return response.content.decode()


def _past_appointment(alice: User, doctor: User, clinic: Clinic) -> None:
    appointment(patient=alice, doctor=doctor, clinic=clinic, starts_at=timezone.now() - timedelta(days=3))


async def test_a_critical_reading_reaches_the_open_dashboard(
    channel_layer: str, alice: User, bob: User, clinic: Clinic
) -> None:
    dave = await database_sync_to_async(make_doctor)(clinic=clinic, full_name="Dave", email="dave@example.org")
    await database_sync_to_async(_past_appointment)(alice, bob, clinic)
    bob_client = await database_sync_to_async(signed_in)(bob)
    dave_client = await database_sync_to_async(signed_in)(dave)
    assert "data-alert-id" not in await database_sync_to_async(_triage_page)(bob_client)

    # Bob's dashboard is open (its page's notification socket), and so is Dave's.
    bob_socket, connected, _ = await _notification_socket(bob_client)
    assert connected
    assert (await bob_socket.receive_json_from(timeout=WAIT_S))["type"] == "unread"  # the page re-syncs on this
    dave_socket, connected, _ = await _notification_socket(dave_client)
    assert connected
    await dave_socket.receive_json_from(timeout=WAIT_S)

    # Alice enters a crisis reading on her phone.
    recorded = await database_sync_to_async(reading_record)(
        patient=alice,
        by=alice,
        kind="blood_pressure",
        values=CRISIS,
        measured_at=timezone.now() - timedelta(minutes=2),
        source="manual",
    )
    assert recorded.alert is not None

    notice = await bob_socket.receive_json_from(timeout=WAIT_S)
    assert notice["type"] == "notification"
    assert notice["urgent"] is True
    assert "Alice" in notice["title"]
    # What the dashboard's script then reads: the queue, with the new alert on top.
    page = await database_sync_to_async(_triage_page)(bob_client)
    assert f'data-alert-id="{recorded.alert.pk}"' in page
    assert "190/110 mmHg" in page
    # Dave is not Alice's doctor: no notice, nothing in his queue.
    assert await dave_socket.receive_nothing(timeout=0.5)
    assert "data-alert-id" not in await database_sync_to_async(_triage_page)(dave_client)
    await bob_socket.disconnect()
    await dave_socket.disconnect()


async def test_a_visitor_gets_no_socket_and_no_queue(channel_layer: str, db: None) -> None:
    _socket, connected, code = await _notification_socket(None)
    assert not connected
    assert code == 4401
    response = await database_sync_to_async(Client().get)(reverse("care:triage"))
    assert response.status_code == 302
