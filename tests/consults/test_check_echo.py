"""The echo peer on the real server: Daphne (forked on the test database,
see tests/browser/consult_helpers.py) serves the check page and the offer
endpoint over HTTP, and a scripted aiortc client, signed in as Alice with
a session cookie and the page's CSRF token, gets its video, audio and
data-channel pings back. The peer lives on Daphne's event loop after the
request that made it has been answered."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from apps.accounts.models import User
from apps.clinics.models import Clinic
from apps.scheduling.models import Appointment
from tests.browser.consult_helpers import IN_MEMORY_LAYER, daphne_server, open_video_appointment, session_cookie
from tests.consults.echo_client import EchoClient

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def server(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    with daphne_server(django_db_blocker, CHANNEL_LAYERS=IN_MEMORY_LAYER) as url:
        yield url


async def _check(server: str, cookie: str, appointment: Appointment) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=server, cookies={"sessionid": cookie}, timeout=30) as http:
        page = await http.get(f"/consults/{appointment.pk}/check/")
        assert page.status_code == 200
        assert "data-consult-check" in page.text
        client = EchoClient()
        try:
            answer = await http.post(
                f"/consults/{appointment.pk}/check/offer/",
                json={"type": "offer", "sdp": await client.offer()},
                headers={"X-CSRFToken": http.cookies["csrftoken"]},
            )
            assert answer.status_code == 200, answer.text
            await client.accept(answer.json()["sdp"])
            rtts = []
            for n in range(5):
                echo, rtt_ms = await client.ping(f"ping {n}")
                assert echo == f"ping {n}"
                rtts.append(rtt_ms)
            figures["rtt_ms"] = sorted(rtts)[len(rtts) // 2]
            figures["video_frames"] = await client.frames("video", 15)
            figures["audio_frames"] = await client.frames("audio", 25)
            client.done()
            figures["closed_by_server"] = await client.server_closed()
        finally:
            await client.close()
        # Without the CSRF token the offer is refused.
        refused = await http.post(f"/consults/{appointment.pk}/check/offer/", json={"type": "offer", "sdp": "v=0"})
        figures["without_csrf"] = refused.status_code
    return figures


def test_a_scripted_client_gets_its_media_and_pings_echoed_by_the_server(
    server: str, alice: User, bob: User, clinic: Clinic
) -> None:
    appointment = open_video_appointment(alice, bob, clinic)
    figures = asyncio.run(_check(server, session_cookie(alice), appointment))
    assert figures["video_frames"] >= 15, figures
    assert figures["audio_frames"] >= 25, figures
    assert figures["rtt_ms"] < 1000, figures
    assert figures["closed_by_server"], figures
    assert figures["without_csrf"] == 403
