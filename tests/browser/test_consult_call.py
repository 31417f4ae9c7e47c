"""A video consult through the real room page: two Chromium contexts (the
patient on a phone screen, the doctor on a desktop) with fake cameras and
microphones, against Daphne serving HTTP and WebSockets.

pytest-django's live server speaks WSGI only, so Daphne runs here in a
forked process (channels' ``DaphneProcess``) on the test database, which is
why this test needs PostgreSQL: a forked SQLite in-memory database is not
shared."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.db import connections
from django.test import Client
from django.utils import timezone

from apps.accounts.models import User
from apps.clinics.models import Clinic
from apps.consults.models import ChatMessage, Consult, ConsultState
from apps.scheduling.models import Appointment, AppointmentStatus
from tests.browser.conftest import CHROMIUM_ARGS
from tests.services import chromium_path, require_postgres

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WAIT_MS = 20_000
# Sums over the inbound RTP streams of one kind: frames decoded (video) and
# packets received (audio).
INBOUND = """async (kind) => {
  const pc = window.telemedConsult.pc;
  if (!pc) return {frames: 0, packets: 0};
  const report = await pc.getStats();
  let frames = 0, packets = 0;
  report.forEach((s) => {
    if (s.type !== "inbound-rtp" || s.kind !== kind) return;
    frames += s.framesDecoded || 0;
    packets += s.packetsReceived || 0;
  });
  return {frames, packets};
}"""


@pytest.fixture(scope="module")
def server(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """Daphne on a free port, forked before Chromium starts, on the test
    database and the in-memory channel layer (one process holds every socket)."""
    from channels.testing.live import make_application
    from daphne.testing import DaphneProcess

    layers = settings.CHANNEL_LAYERS
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    process = DaphneProcess("127.0.0.1", partial(make_application, static_wrapper=ASGIStaticFilesHandler))
    process.daemon = True
    with django_db_blocker.unblock():  # forked while unblocked: the server may use the database
        require_postgres()
        connections.close_all()  # the child must not share the parent's connection
        process.start()
    try:
        assert process.ready.wait(timeout=30), "Daphne did not start"
        yield f"http://127.0.0.1:{process.port.value}"
    finally:
        process.terminate()
        process.join(timeout=10)
        settings.CHANNEL_LAYERS = layers


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Any]:
    """Started after the server has forked. Local addresses as host
    candidates (no mDNS) and sound that may play without a tap."""
    from playwright.sync_api import sync_playwright

    args = [
        *CHROMIUM_ARGS,
        "--disable-features=WebRtcHideLocalIpsWithMdns",
        "--autoplay-policy=no-user-gesture-required",
    ]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=args, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def appointment(alice: User, bob: User, clinic: Clinic) -> Appointment:
    """Alice's video appointment with Bob in five minutes: the room is open."""
    starts_at = timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=5)
    return Appointment.objects.create(
        patient=alice,
        doctor=bob,
        clinic=clinic,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=30),
        mode="video",
        booked_by=alice,
    )


def _signed_in_page(browser: Any, server: str, user: User, **context: Any) -> Any:
    client = Client()
    client.force_login(user)
    ctx = browser.new_context(**context)
    ctx.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": server}])
    page = ctx.new_page()
    page.set_default_timeout(WAIT_MS)
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    return page


def _inbound(page: Any, kind: str) -> dict[str, int]:
    result: dict[str, int] = page.evaluate(INBOUND, kind)
    return result


def _grows(page: Any, kind: str, field: str) -> bool:
    """Whether the count goes up between two samples (a few tries: frames
    may take a moment to come after connecting)."""
    before = _inbound(page, kind)[field]
    for _ in range(10):
        page.wait_for_timeout(700)
        if _inbound(page, kind)[field] > before:
            return True
    return False


def _video_stops_and_audio_flows(page: Any) -> bool:
    """Two samples a second apart with no new video frame, while audio
    packets kept coming in between."""
    for _ in range(15):
        before = _inbound(page, "video")["frames"], _inbound(page, "audio")["packets"]
        page.wait_for_timeout(1000)
        after = _inbound(page, "video")["frames"], _inbound(page, "audio")["packets"]
        if after[0] == before[0]:
            return after[1] > before[1]
    return False


def _state(page: Any, field: str) -> Any:
    return page.evaluate(f"window.telemedConsult.{field}")


def test_a_patient_and_a_doctor_hold_a_video_consult(
    server: str, browser: Any, alice: User, bob: User, appointment: Appointment
) -> None:
    room = f"{server}/consults/{appointment.pk}/"
    patient = _signed_in_page(browser, server, alice, viewport={"width": 360, "height": 740}, is_mobile=True)
    doctor = _signed_in_page(browser, server, bob, viewport={"width": 1280, "height": 800})

    patient.goto(room)
    patient.wait_for_function("() => window.telemedConsult && window.telemedConsult.consultState === 'waiting'")
    assert _state(patient, "status") == "waiting_patient"
    assert patient.evaluate("document.documentElement.scrollWidth") <= 360

    doctor.goto(room)
    start = doctor.locator("[data-action=start]")
    start.wait_for(state="visible")
    doctor.wait_for_function("() => window.telemedConsult.otherPresent === true")
    assert _state(doctor, "status") == "waiting_doctor_ready"
    assert _state(patient, "pc") is None  # nobody's media flows before the doctor starts
    start.click()

    for page in (patient, doctor):
        page.wait_for_function(
            "() => window.telemedConsult.pc && window.telemedConsult.pc.connectionState === 'connected'"
        )
    for page in (patient, doctor):
        assert _grows(page, "video", "frames"), "no video frames decoded"
        assert _state(page, "iceServers") == []  # nothing on the internet
    assert doctor.locator("[data-action=end]").is_visible()
    # The video sender is capped for weak links (CONSULT_VIDEO_MAX_KBPS, 300 by default).
    video_cap = (
        "() => window.telemedConsult.pc.getSenders().find((s) => s.track && s.track.kind === 'video')"
        ".getParameters().encodings[0].maxBitrate"
    )
    assert patient.evaluate(video_cap) == 300_000
    # Each side measures its connection and the other side sees it.
    doctor.wait_for_function(
        "() => window.telemedConsult.otherQuality && window.telemedConsult.otherQuality.bitrate_kbps !== null"
    )
    assert "kbps" in doctor.locator("[data-quality-theirs]").inner_text()
    assert not doctor.locator("[data-action=start]").is_visible()

    # Chat both ways, persisted.
    patient.locator("[data-chat-form] input[name=body]").fill("My head still hurts")
    patient.locator("[data-chat-form] button[type=submit]").click()
    doctor.locator("[data-chat-log] li", has_text="My head still hurts").wait_for()
    doctor.locator("[data-chat-form] input[name=body]").fill("Since when?")
    doctor.locator("[data-chat-form] input[name=body]").press("Enter")
    patient.locator("[data-chat-log] li", has_text="Since when?").wait_for()
    assert patient.locator("[data-chat-log] li").count() == 2
    assert ChatMessage.objects.filter(consult__appointment=appointment).count() == 2

    # The patient's link is poor: audio only. The doctor's page follows, and
    # video stops both ways while audio keeps flowing.
    patient.locator("[data-action=audio-only]").click()
    doctor.wait_for_function("() => window.telemedConsult.mediaMode === 'audio'")
    assert doctor.locator("[data-remote-note]").is_visible()
    assert _video_stops_and_audio_flows(doctor), "the doctor still receives video, or no audio"
    assert _video_stops_and_audio_flows(patient), "the patient still receives video, or no audio"
    assert Consult.objects.get(appointment=appointment).media_mode == "audio"

    # And back to video.
    patient.locator("[data-action=audio-only]").click()
    doctor.wait_for_function("() => window.telemedConsult.mediaMode === 'video'")
    assert _grows(doctor, "video", "frames"), "video did not come back"

    # The doctor ends the consult: both pages say so; the appointment is completed.
    doctor.locator("[data-action=end]").click()
    for page in (patient, doctor):
        page.locator("[data-ended]").wait_for(state="visible")
        assert _state(page, "consultState") == "ended"
        assert _state(page, "pc") is None
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.COMPLETED
    assert appointment.duration_s is not None
    assert Consult.objects.get(appointment=appointment).state == ConsultState.ENDED
    assert patient.errors == [] and doctor.errors == []
    patient.context.close()
    doctor.context.close()
