"""A video consult through the real room page: two Chromium contexts (the
patient on a phone screen, the doctor on a desktop) with fake cameras and
microphones, against Daphne serving HTTP and WebSockets (forked on the test
database: see consult_helpers)."""

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
    inbound,
    open_video_appointment,
    signed_in_page,
    state,
    wait_connected,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def server(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """On the in-memory channel layer: one process holds every socket."""
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


def _video_stops_and_audio_flows(page: Any) -> bool:
    """Two samples a second apart with no new video frame, while audio
    packets kept coming in between."""
    for _ in range(15):
        before = inbound(page, "video")["frames"], inbound(page, "audio")["packets"]
        page.wait_for_timeout(1000)
        after = inbound(page, "video")["frames"], inbound(page, "audio")["packets"]
        if after[0] == before[0]:
            return after[1] > before[1]
    return False


def test_a_patient_and_a_doctor_hold_a_video_consult(
    server: str, browser: Any, alice: User, bob: User, appointment: Appointment
) -> None:
    room = f"{server}/consults/{appointment.pk}/"
    patient = signed_in_page(browser, server, alice, viewport={"width": 360, "height": 740}, is_mobile=True)
    doctor = signed_in_page(browser, server, bob, viewport={"width": 1280, "height": 800})

    patient.goto(room)
    patient.wait_for_function("() => window.telemedConsult && window.telemedConsult.consultState === 'waiting'")
    assert state(patient, "status") == "waiting_patient"
    assert patient.evaluate("document.documentElement.scrollWidth") <= 360

    doctor.goto(room)
    start = doctor.locator("[data-action=start]")
    start.wait_for(state="visible")
    doctor.wait_for_function("() => window.telemedConsult.otherPresent === true")
    assert state(doctor, "status") == "waiting_doctor_ready"
    assert state(patient, "pc") is None  # nobody's media flows before the doctor starts
    start.click()

    wait_connected(patient, doctor)
    for page in (patient, doctor):
        assert grows(page, "video", "frames"), "no video frames decoded"
        assert state(page, "iceServers") == []  # nothing on the internet
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
    assert grows(doctor, "video", "frames"), "video did not come back"

    # The doctor ends the consult: both pages say so; the appointment is completed.
    doctor.locator("[data-action=end]").click()
    for page in (patient, doctor):
        page.locator("[data-ended]").wait_for(state="visible")
        assert state(page, "consultState") == "ended"
        assert state(page, "pc") is None
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.COMPLETED
    assert appointment.duration_s is not None
    assert Consult.objects.get(appointment=appointment).state == ConsultState.ENDED
    assert patient.errors == [] and doctor.errors == []
    patient.context.close()
    doctor.context.close()
