"""A network drop in the middle of a video consult: the server process is
killed and a new one takes its port (the database keeps the consult), or one
side's socket closes. The room pages must notice, reconnect, re-sync and get
media flowing again within 15 s of the cut, without anyone touching the
page."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from apps.accounts.models import User
from apps.clinics.models import Clinic
from apps.consults.models import ChatMessage
from apps.scheduling.models import Appointment
from tests.browser.consult_helpers import (
    IN_MEMORY_LAYER,
    call_browser,
    everyone_left,
    grows,
    open_video_appointment,
    signed_in_page,
    state,
    wait_connected,
)
from tests.browser.daphne_restart import RestartableServer, restartable_daphne

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RECOVERY_S = 15.0
# Frames decoded on the page's current peer connection, with which one it
# is: a count from an older connection says nothing about media now.
FRAMES = """async () => {
  const room = window.telemedConsult;
  if (!room.pc) return {pc: room.peerConnections, frames: 0};
  const report = await room.pc.getStats();
  let frames = 0;
  report.forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0; });
  return {pc: room.peerConnections, frames};
}"""
# Added to a page before its scripts: keeps the page's WebSockets within reach.
KEEP_SOCKETS = """
(() => {
  const Native = window.WebSocket;
  window.telemedSockets = [];
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      window.telemedSockets.push(this);
    }
  };
})();
"""


@pytest.fixture(scope="module")
def server(django_db_setup: None, django_db_blocker: Any) -> Iterator[RestartableServer]:
    """In-memory channel layer: one process holds every socket, and a
    restart loses everything but the database (as in embedded mode)."""
    with restartable_daphne(django_db_blocker, CHANNEL_LAYERS=IN_MEMORY_LAYER) as server:
        yield server


@pytest.fixture(scope="module")
def browser(server: RestartableServer) -> Iterator[Any]:
    """Started after both server processes have forked."""
    with call_browser() as browser:
        yield browser


@pytest.fixture
def appointment(alice: User, bob: User, clinic: Clinic) -> Iterator[Appointment]:
    appointment = open_video_appointment(alice, bob, clinic)
    yield appointment
    everyone_left(appointment)


def _remaining_ms(deadline: float) -> float:
    return max(1.0, (deadline - time.monotonic()) * 1000)


def _frames_grow_before(page: Any, deadline: float) -> bool:
    """Whether the current connection decodes new video frames before the
    deadline (a sample taken on an older connection starts over)."""
    before = page.evaluate(FRAMES)
    while time.monotonic() < deadline:
        page.wait_for_timeout(300)
        now = page.evaluate(FRAMES)
        if now["pc"] != before["pc"]:
            before = now
        elif now["frames"] > before["frames"]:
            return True
    return False


def _in_a_call(server: RestartableServer, browser: Any, alice: User, bob: User, appointment: Appointment) -> Any:
    room = f"{server.url}/consults/{appointment.pk}/"
    patient = signed_in_page(browser, server.url, alice, viewport={"width": 360, "height": 740}, is_mobile=True)
    patient.add_init_script(KEEP_SOCKETS)
    doctor = signed_in_page(browser, server.url, bob, viewport={"width": 1280, "height": 800})
    patient.goto(room)
    patient.wait_for_function("() => window.telemedConsult && window.telemedConsult.consultState === 'waiting'")
    doctor.goto(room)
    doctor.wait_for_function("() => window.telemedConsult.otherPresent === true")
    doctor.locator("[data-action=start]").click()
    wait_connected(patient, doctor)
    for page in (patient, doctor):
        assert grows(page, "video", "frames"), "no video frames before the cut"
        assert state(page, "welcomes") == 1
    return patient, doctor


def test_it_reconnects_a_side_whose_socket_closed_and_media_flows_again(
    server: RestartableServer, browser: Any, alice: User, bob: User, appointment: Appointment
) -> None:
    patient, doctor = _in_a_call(server, browser, alice, bob, appointment)
    cut = time.monotonic()
    patient.evaluate("window.telemedSockets.at(-1).close()")
    deadline = cut + RECOVERY_S
    patient.wait_for_function(
        "() => window.telemedConsult.welcomes === 2 && window.telemedConsult.socketState === 'open'",
        timeout=_remaining_ms(deadline),
    )
    assert state(doctor, "welcomes") == 1  # the doctor's socket stayed open
    for page in (patient, doctor):
        page.wait_for_function(
            "() => window.telemedConsult.pc && window.telemedConsult.pc.connectionState === 'connected'"
            " && window.telemedConsult.status === 'in_call'",
            timeout=_remaining_ms(deadline),
        )
    for page in (patient, doctor):
        assert _frames_grow_before(page, deadline), "video did not flow again within 15 s of the cut"
    print(f"media flowing again on both sides {time.monotonic() - cut:.1f} s after the patient's socket closed")
    assert patient.errors == [] and doctor.errors == []
    patient.context.close()
    doctor.context.close()


def test_it_reconnects_both_sides_and_media_flows_again_after_the_server_restarts(
    server: RestartableServer, browser: Any, alice: User, bob: User, appointment: Appointment
) -> None:
    patient, doctor = _in_a_call(server, browser, alice, bob, appointment)
    cut = time.monotonic()
    server.restart()
    deadline = cut + RECOVERY_S
    for page in (patient, doctor):
        # The page saw its socket drop, came back and re-synced from a new welcome...
        page.wait_for_function(
            "() => window.telemedConsult.welcomes >= 2 && window.telemedConsult.socketState === 'open'"
            " && window.telemedConsult.closeCode === 1006",
            timeout=_remaining_ms(deadline),
        )
    for page in (patient, doctor):
        # ...the call is connected again and video decodes on it.
        page.wait_for_function(
            "() => window.telemedConsult.pc && window.telemedConsult.pc.connectionState === 'connected'"
            " && window.telemedConsult.status === 'in_call'",
            timeout=_remaining_ms(deadline),
        )
    for page in (patient, doctor):
        assert _frames_grow_before(page, deadline), "video did not flow again within 15 s of the cut"
    recovered_s = time.monotonic() - cut
    print(f"media flowing again on both sides {recovered_s:.1f} s after the cut")

    # Signaling goes through the new process: chat both ways, stored once.
    patient.locator("[data-chat-form] input[name=body]").fill("Can you hear me again?")
    patient.locator("[data-chat-form] button[type=submit]").click()
    doctor.locator("[data-chat-log] li", has_text="Can you hear me again?").wait_for()
    assert ChatMessage.objects.filter(consult__appointment=appointment).count() == 1
    assert patient.errors == [] and doctor.errors == []
    patient.context.close()
    doctor.context.close()
