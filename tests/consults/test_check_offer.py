"""The echo peer behind ``/consults/<id>/check/offer/``: a scripted aiortc
client offers, gets the answer, and its media and data-channel pings come
back; bad offers are refused with nothing started; the per-process limit
and the one-per-user rule hold; a session ends by itself.

The view is async and its peer lives on the event loop that served it:
these tests call it through Django's AsyncClient on the test's own loop
(the Daphne test in test_check_echo.py covers the real server). Who may
offer at all is tested in test_check_page.py."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import AsyncClient
from django.urls import reverse
from django.utils.translation import gettext_lazy

from apps.accounts.models import User
from apps.consults.models import Consult
from apps.consults.precheck import OFFER_MAX_BYTES, CheckError, echo_peers
from apps.scheduling.models import Appointment
from tests.consults.echo_client import EchoClient

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def no_sessions_left() -> AsyncIterator[None]:
    """Each test starts and ends with no echo session in this process; the
    database connection the view's sync parts opened in asgiref's thread is
    closed (the test client keeps Django from closing it after a request)."""
    assert echo_peers.sessions == {}
    yield
    await echo_peers.close_all()
    await sync_to_async(connections.close_all)()


async def _client(user: User) -> AsyncClient:
    client = AsyncClient()
    await client.aforce_login(user)
    return client


async def _offer(client: AsyncClient, appointment: Appointment, body: bytes | dict[str, Any]) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body)
    url = reverse("consults:check_offer", args=[appointment.pk])
    return await client.post(url, data=data, content_type="application/json")


async def _connect(user: User, appointment: Appointment, **kwargs: Any) -> EchoClient:
    peer = EchoClient(**kwargs)
    response = await _offer(await _client(user), appointment, {"type": "offer", "sdp": await peer.offer()})
    assert response.status_code == 200, response.content
    await peer.accept(response.json()["sdp"])
    return peer


async def test_it_echoes_the_patients_media_and_pings(alice: User, appointment: Appointment, settings: Any) -> None:
    peer = EchoClient()
    response = await _offer(await _client(alice), appointment, {"type": "offer", "sdp": await peer.offer()})
    assert response.status_code == 200
    answer = response.json()
    assert answer["type"] == "answer"
    assert answer["duration_s"] == settings.CONSULT_CHECK_DURATION_S
    assert "a=candidate:" in answer["sdp"]  # gathered before answering: no trickle needed
    assert "a=sendrecv" in answer["sdp"]  # it sends the tracks back
    await peer.accept(answer["sdp"])
    try:
        echo, rtt_ms = await peer.ping("ping 1")
        assert echo == "ping 1"
        assert 0 <= rtt_ms < 1000
        echo, _rtt = await peer.ping(b"\x00" * 1000)  # the probe's binary chunks too
        assert echo == b"\x00" * 1000
        assert await peer.frames("video", 10) >= 10
        assert await peer.frames("audio", 10) >= 10
        assert list(echo_peers.sessions) == [alice.pk]
        # A check does not open the room.
        assert not await Consult.objects.filter(appointment=appointment).aexists()
    finally:
        await peer.close()


async def test_the_doctor_may_run_the_check_too(bob: User, appointment: Appointment) -> None:
    peer = await _connect(bob, appointment, media=False)
    try:
        assert (await peer.ping("hello"))[0] == "hello"
    finally:
        await peer.close()


async def test_done_ends_the_session(alice: User, appointment: Appointment) -> None:
    peer = await _connect(alice, appointment, media=False)
    try:
        peer.done()
        assert await peer.server_closed()
        assert echo_peers.sessions == {}
    finally:
        await peer.close()


async def test_the_session_ends_by_itself_after_its_duration(
    alice: User, appointment: Appointment, settings: Any
) -> None:
    settings.CONSULT_CHECK_DURATION_S = 1
    peer = await _connect(alice, appointment, media=False)
    try:
        assert echo_peers.sessions
        assert await peer.server_closed()
        assert echo_peers.sessions == {}
    finally:
        await peer.close()


async def test_a_users_new_check_replaces_the_old_one(alice: User, appointment: Appointment) -> None:
    first = await _connect(alice, appointment, media=False)
    old_session = echo_peers.sessions[alice.pk]
    second = await _connect(alice, appointment, media=False)
    try:
        assert old_session.closed
        assert list(echo_peers.sessions) == [alice.pk]
        assert echo_peers.sessions[alice.pk] is not old_session
        assert (await second.ping("still here"))[0] == "still here"
        assert await first.server_closed()
    finally:
        await first.close()
        await second.close()


async def test_beyond_the_process_limit_it_is_busy(
    alice: User, bob: User, appointment: Appointment, settings: Any
) -> None:
    settings.CONSULT_CHECK_MAX_SESSIONS = 1
    alices = await _connect(alice, appointment, media=False)
    bobs = EchoClient(media=False)
    try:
        response = await _offer(await _client(bob), appointment, {"type": "offer", "sdp": await bobs.offer()})
        assert response.status_code == 503
        assert response["Retry-After"] == "30"
        assert response.json() == {
            "error": "busy",
            "message": "The network test is busy right now. Please try again in a minute.",
        }
        assert list(echo_peers.sessions) == [alice.pk]
        # Alice's own new check takes her place rather than being refused.
        await alices.close()
        alices = await _connect(alice, appointment, media=False)
        assert list(echo_peers.sessions) == [alice.pk]
    finally:
        await alices.close()
        await bobs.close()


GARBAGE_SDP = "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=this is not sdp\r\n"


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (b"{", "bad_offer", "your browser sent something we could not read"),
        ({"type": "offer", "sdp": "hello"}, "bad_offer", "your browser sent something we could not read"),
        ({"type": "offer", "sdp": GARBAGE_SDP}, "bad_offer", "your browser sent something we could not read"),
        (
            {"type": "offer", "sdp": "v=0\r\n" + "a=x:" + "y" * OFFER_MAX_BYTES},
            "offer_too_large",
            "your browser sent too much data",
        ),
    ],
)
async def test_it_refuses_an_offer_it_cannot_use_and_starts_nothing(
    alice: User, appointment: Appointment, body: Any, code: str, message: str
) -> None:
    response = await _offer(await _client(alice), appointment, body)
    assert response.status_code == 400
    assert response.json()["error"] == code
    assert message in response.json()["message"]
    assert echo_peers.sessions == {}
    assert not await Consult.objects.filter(appointment=appointment).aexists()


async def test_it_refuses_an_offer_with_no_codec_in_common(alice: User, appointment: Appointment) -> None:
    peer = EchoClient()
    sdp = await peer.offer()
    await peer.close()
    unknown = re.sub(r"(a=rtpmap:\d+ )[^/]+/", r"\1x-unknown/", sdp)  # every codec renamed
    response = await _offer(await _client(alice), appointment, {"type": "offer", "sdp": unknown})
    assert response.status_code == 400
    assert response.json()["error"] == "bad_offer"
    await asyncio.sleep(0)
    assert echo_peers.sessions == {}


async def test_the_refusal_is_in_the_users_language(
    alice: User, appointment: Appointment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the async view too. (A message the zh-hans catalog already
    has stands in for the new ones, which the catalog gets later.)"""
    monkeypatch.setitem(CheckError.MESSAGES, "bad_offer", gettext_lazy("Audio only"))
    await User.objects.filter(pk=alice.pk).aupdate(language="zh-hans")
    response = await _offer(await _client(alice), appointment, b"{")
    assert response.status_code == 400
    assert response.json() == {"error": "bad_offer", "message": "仅语音"}
