"""The signaling protocol is client-agnostic: a Python client written with
aiortc (tests/consults/aiortc_peer.py), which knows only
docs/consult-protocol.md, joins Alice's room as the patient over a real
WebSocket (session cookie and Origin) and holds a call with Bob in Chromium
on the real room page, served by Daphne (forked on the test database: see
tests/browser/consult_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from apps.accounts.models import User
from apps.clinics.models import Clinic
from apps.consults.models import ChatMessage, Consult, ConsultState
from apps.scheduling.models import Appointment, AppointmentStatus
from tests.browser.consult_helpers import (
    IN_MEMORY_LAYER,
    call_browser,
    daphne_server,
    everyone_left,
    grows,
    open_video_appointment,
    session_cookie,
    signed_in_page,
    state,
    wait_connected,
)
from tests.consults.aiortc_peer import scripted_peer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WAIT_S = 30.0  # the longest the test waits for the scripted peer to see something that must come


@pytest.fixture(scope="module")
def server(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    with daphne_server(django_db_blocker, CHANNEL_LAYERS=IN_MEMORY_LAYER) as url:
        yield url


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Any]:
    """Started after the server has forked."""
    with call_browser() as browser:
        yield browser


@pytest.fixture
def appointment(alice: User, bob: User, clinic: Clinic) -> Iterator[Appointment]:
    appointment = open_video_appointment(alice, bob, clinic)
    yield appointment
    everyone_left(appointment)  # before the database is flushed


def test_an_aiortc_patient_holds_a_call_with_a_doctor_in_chromium(
    server: str, browser: Any, alice: User, bob: User, appointment: Appointment
) -> None:
    with scripted_peer(server=server, appointment_id=appointment.pk, cookie=session_cookie(alice)) as runner:
        peer = runner.peer
        assert runner.wait_until(lambda p: bool(p.welcome), timeout_s=WAIT_S), peer.failure
        assert peer.welcome["you"] == {"role": "patient", "name": "Alice", "polite": True}
        assert peer.consult_state == "waiting"

        # Bob opens the room in Chromium, sees Alice waiting, and starts.
        doctor = signed_in_page(browser, server, bob, viewport={"width": 1280, "height": 800})
        doctor.goto(f"{server}/consults/{appointment.pk}/")
        start = doctor.locator("[data-action=start]")
        start.wait_for(state="visible")
        doctor.wait_for_function("() => window.telemedConsult.otherPresent === true")
        assert runner.wait_until(lambda p: p.other_present, timeout_s=WAIT_S)
        assert peer.pc is None  # no media before the doctor starts
        start.click()

        # Connected both ways: Bob's page decodes the script's video and
        # hears its audio; the script decodes Bob's camera.
        wait_connected(doctor)
        assert runner.wait_until(lambda p: p.connection_state == "connected", timeout_s=WAIT_S), (
            peer.connection_state,
            peer.failure,
        )
        assert grows(doctor, "video", "frames"), "Bob's page decodes no video from the scripted peer"
        assert grows(doctor, "audio", "packets"), "Bob's page gets no audio from the scripted peer"
        received = peer.frames_received["video"]
        assert runner.wait_until(lambda p: p.frames_received["video"] > received + 10, timeout_s=WAIT_S), (
            "the scripted peer decodes no video from Chromium"
        )
        assert peer.frames_received["audio"] > 0
        assert peer.offers_answered >= 1 and peer.peer_connections >= 1
        # Its quality reports reach the doctor's page.
        doctor.wait_for_function(
            "() => window.telemedConsult.otherQuality && window.telemedConsult.otherQuality.bitrate_kbps !== null"
        )

        # Chat both ways.
        runner.send({"type": "chat", "body": "I can see you"})
        doctor.locator("[data-chat-log] li", has_text="I can see you").wait_for()
        doctor.locator("[data-chat-form] input[name=body]").fill("Good, let's begin")
        doctor.locator("[data-chat-form] input[name=body]").press("Enter")
        assert runner.wait_until(lambda p: any(m["body"] == "Good, let's begin" for m in p.chat), timeout_s=WAIT_S)
        assert [(m["from"], m["body"]) for m in peer.chat] == [
            ("patient", "I can see you"),  # the server's copy: the acknowledgement
            ("doctor", "Good, let's begin"),
        ]

        # Bob ends the consult: the script is told and its socket closed with 4410.
        doctor.locator("[data-action=end]").click()
        doctor.locator("[data-ended]").wait_for(state="visible")
        assert runner.wait_until(lambda p: p.close_code is not None, timeout_s=WAIT_S)
        assert peer.ended is not None and peer.ended["by"] == "doctor"
        assert peer.close_code == 4410
        assert peer.pc is None
        assert peer.errors == []
        assert peer.failure is None
        assert state(doctor, "consultState") == "ended"
        assert state(doctor, "pc") is None
        assert doctor.errors == []
        doctor.context.close()

    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.COMPLETED
    assert appointment.duration_s is not None
    assert Consult.objects.get(appointment=appointment).state == ConsultState.ENDED
    stored = ChatMessage.objects.filter(consult__appointment=appointment).order_by("id")
    assert [(m.sender_id, m.body) for m in stored] == [(alice.pk, "I can see you"), (bob.pk, "Good, let's begin")]
