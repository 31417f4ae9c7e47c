"""A video consult through the real room page: two Chromium contexts (the
patient on a phone screen, the doctor on a desktop) with fake cameras and
microphones, against Daphne serving HTTP and WebSockets (forked on the test
database: see consult_helpers). Then what the room does for weak links and
devices: the automatic audio-only switch and the offer of video back (the
decisions on synthetic getStats samples, and the whole path with a link
estimate made low), switching cameras, and the devices chosen on the check
page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from apps.accounts.models import User
from apps.clinics.models import Clinic
from apps.consults.models import ChatMessage, Consult, ConsultEvent, ConsultState
from apps.scheduling.models import Appointment, AppointmentStatus
from tests.browser.consult_helpers import (
    IN_MEMORY_LAYER,
    daphne_server,
    everyone_left,
    grows,
    inbound,
    open_video_appointment,
    signed_in_page,
    state,
    wait_connected,
)
from tests.browser.consult_media import LINK_ESTIMATE_SCRIPT, launch_call_browser, playwright_driver

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def server(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """On the in-memory channel layer: one process holds every socket."""
    with daphne_server(django_db_blocker, CHANNEL_LAYERS=IN_MEMORY_LAYER) as url:
        yield url


@pytest.fixture(scope="module")
def driver(server: str) -> Iterator[Any]:
    """Started after the server has forked."""
    with playwright_driver() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(driver: Any) -> Iterator[Any]:
    """One fake camera (Chromium's default)."""
    browser = launch_call_browser(driver)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def cameras_browser(driver: Any) -> Iterator[Any]:
    """Three fake cameras. Chromium's second one (fake_device_1) gives Y16
    frames that no video encoder takes (nothing is sent from it): the tests
    send from the first and the third."""
    browser = launch_call_browser(driver, cameras=3)
    yield browser
    browser.close()


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
    # Each side measures its connection (delay, loss, bitrate) and sees the
    # other side's: the doctor sees the patient's.
    for page, theirs in ((doctor, "Patient"), (patient, "Doctor")):
        page.wait_for_function(
            "() => window.telemedConsult.otherQuality && window.telemedConsult.otherQuality.bitrate_kbps !== null"
            " && window.telemedConsult.quality && window.telemedConsult.quality.bitrate_kbps !== null"
        )
        for line, who in (("[data-quality-mine]", "You"), ("[data-quality-theirs]", theirs)):
            text = page.locator(line).inner_text()
            assert text.startswith(f"{who}: good connection"), text
            assert " ms" in text and "% " in text and "kbps" in text, text
            assert page.locator(line).get_attribute("data-level") == "good"
    assert not doctor.locator("[data-action=start]").is_visible()
    # One camera: nothing to switch to.
    assert state(patient, "cameras") == 1
    assert not patient.locator("[data-action=switch-camera]").is_visible()

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


# --- Weak links ---------------------------------------------------------------------------

SAMPLE_EVERY_MS = 2000
# Feeds samples to a fresh LinkWatch, the room page's decision maker, and
# returns its answers, one per sample.
OBSERVE = """(samples) => {
  const watch = new window.telemedConsult.LinkWatch();
  return samples.map((sample) => watch.observe(sample));
}"""


def _samples(*runs: tuple[int, str, bool, float | None], start_ms: int = 0) -> list[dict[str, Any]]:
    """Samples every 2 s: each run is (how many, mode, auto, available kbps)."""
    samples = []
    for count, mode, auto, kbps in runs:
        for _ in range(count):
            samples.append(
                {"at_ms": start_ms, "mode": mode, "auto": auto, "available_kbps": kbps, "video_sent_kbps": None}
            )
            start_ms += SAMPLE_EVERY_MS
    return samples


def _decisions(page: Any, samples: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """(index of the sample, decision) for the samples that got one."""
    answers = page.evaluate(OBSERVE, samples)
    return [(index, answer) for index, answer in enumerate(answers) if answer is not None]


@pytest.fixture
def room_page(server: str, browser: Any, alice: User, appointment: Appointment) -> Iterator[Any]:
    """The patient's room page, alone in the waiting room."""
    page = signed_in_page(browser, server, alice)
    page.goto(f"{server}/consults/{appointment.pk}/")
    page.wait_for_function("() => window.telemedConsult && window.telemedConsult.consultState === 'waiting'")
    yield page
    page.context.close()


def test_it_turns_video_off_after_ten_seconds_of_low_bitrate_and_not_on_a_short_dip(room_page: Any) -> None:
    # Good, then below 150 kbps from the 4th sample: the 6th low sample is
    # 10 s into the run, and only then does video go.
    sustained = _samples((3, "video", False, 600), (8, "video", False, 120))
    assert _decisions(room_page, sustained) == [(8, "audio_only")]
    # Dips of 8 s (five samples) with good samples between: nothing.
    dips = _samples(
        (2, "video", False, 600), (5, "video", False, 90), (1, "video", False, 400), (5, "video", False, 140)
    )
    assert _decisions(room_page, dips) == []
    # 150 kbps itself is not weak.
    assert _decisions(room_page, _samples((10, "video", False, 150))) == []
    # Samples that stop for a while (the call was reconnecting) break a run.
    before_gap = _samples((4, "video", False, 100))
    after_gap = _samples((5, "video", False, 100), start_ms=before_gap[-1]["at_ms"] + 8000)
    assert _decisions(room_page, before_gap + after_gap) == []
    # Without an estimate (a browser that doesn't report one), what the video
    # sender sent while bandwidth held it back counts instead.
    held_back = _samples((6, "video", False, None))
    for sample in held_back:
        sample["video_sent_kbps"] = 80
    assert _decisions(room_page, held_back) == [(5, "audio_only")]
    # Already in audio only: nothing to turn off.
    assert _decisions(room_page, _samples((10, "audio", False, 50))) == []


def test_it_offers_video_back_after_fifteen_seconds_of_recovery_once_and_only_after_an_automatic_switch(
    room_page: Any,
) -> None:
    # Automatic audio only, then above 300 kbps from the 2nd sample: offered
    # on the sample 16 s into the recovery (15 s is not enough at 2 s steps),
    # once, and never switched back by itself.
    recovery = _samples((1, "audio", True, 100), (14, "audio", True, 600))
    assert _decisions(room_page, recovery) == [(9, "offer_video")]
    # A dip during the recovery starts the count again.
    dipped = _samples((5, "audio", True, 600), (1, "audio", True, 200), (9, "audio", True, 600))
    assert _decisions(room_page, dipped) == [(14, "offer_video")]
    # 300 kbps is not above 300.
    assert _decisions(room_page, _samples((12, "audio", True, 300))) == []
    # Someone chose audio only: a good link doesn't argue with them.
    assert _decisions(room_page, _samples((20, "audio", False, 2000))) == []
    # The whole story: weak video → audio only → recovered → offered.
    story = _samples((6, "video", False, 100), (9, "audio", True, 800))
    assert _decisions(room_page, story) == [(5, "audio_only"), (14, "offer_video")]


def _call(
    server: str,
    appointment: Appointment,
    alice: User,
    bob: User,
    *,
    patient_browser: Any,
    doctor_browser: Any,
    patient_camera: str = "",
) -> tuple[Any, Any]:
    """The patient waits (on the camera labelled ``patient_camera``, chosen as
    on the check page, if given), the doctor comes and starts: connected."""
    room = f"{server}/consults/{appointment.pk}/"
    patient = signed_in_page(patient_browser, server, alice)
    patient.add_init_script(LINK_ESTIMATE_SCRIPT)
    doctor = signed_in_page(doctor_browser, server, bob)
    patient.goto(room)
    patient.wait_for_function("() => window.telemedConsult && window.telemedConsult.consultState === 'waiting'")
    if patient_camera:
        patient.wait_for_function(PREVIEW)
        patient.evaluate(CHOOSE_CAMERA, patient_camera)
        patient.reload()
        patient.wait_for_function("() => window.telemedConsult && window.telemedConsult.consultState === 'waiting'")
    doctor.goto(room)
    doctor.wait_for_function("() => window.telemedConsult.otherPresent === true")
    doctor.locator("[data-action=start]").click()
    wait_connected(patient, doctor)
    return patient, doctor


def test_it_goes_audio_only_on_a_weak_link_and_offers_video_back_when_it_recovers(
    server: str, browser: Any, alice: User, bob: User, appointment: Appointment
) -> None:
    patient, doctor = _call(server, appointment, alice, bob, patient_browser=browser, doctor_browser=browser)
    assert grows(doctor, "video", "frames")
    weak = patient.locator("[data-weak-link]")
    back = patient.locator("[data-action=video-back]")
    assert not weak.is_visible()

    # The patient's link estimate falls to 100 kbps: after ~10 s the patient's
    # page goes audio only by itself, the server records it, the doctor follows.
    patient.evaluate("window.telemedLinkKbps = 100")
    patient.wait_for_function("() => window.telemedConsult.mediaMode === 'audio'", timeout=30_000)
    assert state(patient, "autoAudio") is True
    assert weak.is_visible() and not back.is_visible()
    assert "video is off to keep the call going" in weak.inner_text()
    doctor.wait_for_function("() => window.telemedConsult.mediaMode === 'audio'")
    assert Consult.objects.get(appointment=appointment).media_mode == "audio"
    assert ConsultEvent.objects.filter(consult__appointment=appointment, kind="media_changed").last().data[
        "reason"
    ] == ("weak_link")
    assert "patient's connection is too weak" in doctor.locator("[data-remote-note]").inner_text()
    assert _video_stops_and_audio_flows(doctor), "the doctor still receives video, or no audio"

    # The link recovers: after ~15 s above 300 kbps video is offered back,
    # not switched on.
    patient.evaluate("window.telemedLinkKbps = 800")
    back.wait_for(state="visible", timeout=40_000)
    assert "better now" in weak.inner_text()
    assert state(patient, "mediaMode") == "audio"
    assert Consult.objects.get(appointment=appointment).media_mode == "audio"
    back.click()
    for page in (patient, doctor):
        page.wait_for_function("() => window.telemedConsult.mediaMode === 'video'")
    assert not weak.is_visible()
    assert grows(doctor, "video", "frames"), "video did not come back"
    assert Consult.objects.get(appointment=appointment).media_mode == "video"
    assert patient.errors == [] and doctor.errors == []
    patient.context.close()
    doctor.context.close()


# --- Cameras and the devices chosen on the check page ---------------------------------------

VIDEO_SENDER = "window.telemedConsult.pc.getSenders().find((s) => s.track && s.track.kind === 'video')"
CAMERA = """() => {
  const room = window.telemedConsult;
  const sender = room.pc.getSenders().find((s) => s.track && s.track.kind === "video");
  const preview = document.querySelector("[data-local-video]").srcObject.getVideoTracks()[0];
  return {
    sending: sender.track.id,
    device: sender.track.getSettings().deviceId,
    preview: preview.id,
    cap: sender.getParameters().encodings[0].maxBitrate,
    sdp: room.pc.localDescription.sdp,
    signaling: room.pc.signalingState,
    pcs: room.peerConnections,
  };
}"""


def test_it_switches_camera_without_renegotiating(
    server: str, cameras_browser: Any, browser: Any, alice: User, bob: User, appointment: Appointment
) -> None:
    patient, doctor = _call(
        server,
        appointment,
        alice,
        bob,
        patient_browser=cameras_browser,
        doctor_browser=browser,
        patient_camera="fake_device_2",
    )
    switch = patient.locator("[data-action=switch-camera]")
    switch.wait_for(state="visible")
    assert state(patient, "cameras") == 3
    assert grows(doctor, "video", "frames")
    patient.evaluate(f"window.oldCameraTrack = {VIDEO_SENDER}.track")
    before = patient.evaluate(CAMERA)

    switch.click()
    patient.wait_for_function("() => window.telemedConsult.cameraSwitches === 1")
    after = patient.evaluate(CAMERA)
    assert after["device"] != before["device"], "still the same camera"
    assert after["sending"] != before["sending"]
    assert after["preview"] == after["sending"], "the preview does not show what is sent"
    assert patient.evaluate("window.oldCameraTrack.readyState") == "ended"
    assert after["cap"] == 300_000
    # replaceTrack: the same connection, no new offer.
    assert (after["sdp"], after["signaling"], after["pcs"]) == (before["sdp"], "stable", before["pcs"])
    assert grows(doctor, "video", "frames"), "no video from the new camera"
    # The choice is remembered for the next call.
    saved = patient.evaluate("JSON.parse(localStorage.getItem('telemed.consult.devices')).videoinput")
    assert saved == after["device"]
    assert patient.errors == [] and doctor.errors == []
    patient.context.close()
    doctor.context.close()


# Chooses, as the check page does, the camera with this label.
CHOOSE_CAMERA = """async (label) => {
  const devices = await navigator.mediaDevices.enumerateDevices();
  const camera = devices.find((d) => d.kind === "videoinput" && d.label === label);
  localStorage.setItem("telemed.consult.devices", JSON.stringify({videoinput: camera.deviceId}));
}"""
DEVICES = """async () => {
  const devices = await navigator.mediaDevices.enumerateDevices();
  const ids = (kind) => devices.filter((d) => d.kind === kind && d.deviceId !== "default").map((d) => d.deviceId);
  return {audioinput: ids("audioinput"), videoinput: ids("videoinput"), audiooutput: ids("audiooutput")};
}"""
PREVIEW = """() => {
  const stream = document.querySelector("[data-local-video]").srcObject;
  return Boolean(stream) && stream.getVideoTracks().length > 0;
}"""
IN_USE = """() => {
  const stream = document.querySelector("[data-local-video]").srcObject;
  const setting = (track) => (track ? track.getSettings().deviceId : null);
  return {
    audioinput: setting(stream && stream.getAudioTracks()[0]),
    videoinput: setting(stream && stream.getVideoTracks()[0]),
    audiooutput: document.querySelector("[data-remote-video]").sinkId,
  };
}"""


def test_it_uses_the_devices_chosen_on_the_check_page(
    server: str, cameras_browser: Any, alice: User, appointment: Appointment
) -> None:
    page = signed_in_page(cameras_browser, server, alice)
    room = f"{server}/consults/{appointment.pk}/"
    page.goto(room)
    page.wait_for_function(PREVIEW)
    devices = page.evaluate(DEVICES)
    first = page.evaluate(IN_USE)
    chosen = {
        "audioinput": devices["audioinput"][-1],
        "videoinput": devices["videoinput"][-1],
        "audiooutput": devices["audiooutput"][-1],
    }
    assert all(chosen[kind] != first[kind] for kind in chosen), "the defaults are the devices chosen"

    page.evaluate("(devices) => localStorage.setItem('telemed.consult.devices', JSON.stringify(devices))", chosen)
    page.reload()
    page.wait_for_function(PREVIEW)
    page.wait_for_function(
        "(id) => document.querySelector('[data-remote-video]').sinkId === id", arg=chosen["audiooutput"]
    )
    assert page.evaluate(IN_USE) == chosen

    # Devices that are gone, or a choice that can't be read: the defaults, silently.
    for saved in (
        '{"audioinput": "gone", "videoinput": "gone", "audiooutput": "gone"}',
        "not json",
        '["a list"]',
    ):
        page.evaluate("(saved) => localStorage.setItem('telemed.consult.devices', saved)", saved)
        page.reload()
        page.wait_for_function(PREVIEW)
        in_use = page.evaluate(IN_USE)
        assert in_use["audioinput"] and in_use["videoinput"], saved
        assert in_use["audiooutput"] == ""
    assert page.errors == []
    page.context.close()
