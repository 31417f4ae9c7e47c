"""The pre-call check through the real page: Alice, on a phone screen in
Chromium with a fake camera and microphone, runs the check against the
server's aiortc echo peer (Daphne forked on the test database: see
consult_helpers); she sees a recommendation, it is kept with the figures
measured, and Bob's dashboard shows it beside her name once she waits in
the room. Without camera and microphone the network is still tested. With
coturn on loopback (started as in test_consult_turn) the relay test
passes, and fails when coturn refuses the app's credentials."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from apps.accounts.models import User
from apps.clinics.models import Clinic
from apps.consults.models import Consult
from apps.scheduling.models import Appointment
from tests.browser import test_consult_turn
from tests.browser.consult_helpers import (
    IN_MEMORY_LAYER,
    call_browser,
    daphne_server,
    everyone_left,
    open_video_appointment,
    signed_in_page,
)
from tests.browser.test_consult_turn import Turn

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
turn = test_consult_turn.turn  # coturn on loopback, started as for the call's TURN test (a module fixture)

CHECK_DONE_MS = 60_000  # connect, ~8 s of measuring, the relay test: generous on a busy machine
PHONE = {"viewport": {"width": 360, "height": 740}, "is_mobile": True}
# Added before the page's scripts: the browser refuses camera and microphone.
DENY_MEDIA = """(() => {
  navigator.mediaDevices.getUserMedia = async () => {
    throw new DOMException("Permission denied", "NotAllowedError");
  };
})();"""


def _turn_settings(turn: Turn, secret: str) -> dict[str, Any]:
    return {"CHANNEL_LAYERS": IN_MEMORY_LAYER, "ICE_STUN_URLS": [], "ICE_TURN_URLS": [turn.url], "TURN_SECRET": secret}


@pytest.fixture(scope="module")
def server(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """No ICE servers: host candidates on this machine."""
    with daphne_server(django_db_blocker, CHANNEL_LAYERS=IN_MEMORY_LAYER) as url:
        yield url


@pytest.fixture(scope="module")
def turn_server(django_db_setup: None, django_db_blocker: Any, turn: Turn) -> Iterator[str]:
    """TURN configured with coturn's secret (the browsers may still go direct)."""
    with daphne_server(django_db_blocker, **_turn_settings(turn, turn.secret)) as url:
        yield url


@pytest.fixture(scope="module")
def wrong_turn_server(django_db_setup: None, django_db_blocker: Any, turn: Turn) -> Iterator[str]:
    """TURN configured with a secret coturn doesn't know."""
    with daphne_server(django_db_blocker, **_turn_settings(turn, "not-" + turn.secret)) as url:
        yield url


@pytest.fixture(scope="module")
def browser(server: str, turn_server: str, wrong_turn_server: str) -> Iterator[Any]:
    """Started after the servers have forked."""
    with call_browser() as browser:
        yield browser


@pytest.fixture
def appointment(alice: User, bob: User, clinic: Clinic) -> Iterator[Appointment]:
    appointment = open_video_appointment(alice, bob, clinic)
    yield appointment
    everyone_left(appointment)  # before the database is flushed


def _run_check(page: Any, server: str, appointment: Appointment) -> dict[str, Any]:
    page.goto(f"{server}/consults/{appointment.pk}/check/")
    page.locator("[data-action=start]").click()
    page.wait_for_function(
        "() => ['done', 'refused', 'error'].includes(window.telemedCheck.stage)", timeout=CHECK_DONE_MS
    )
    check: dict[str, Any] = page.evaluate("window.telemedCheck")
    assert check["stage"] == "done", check
    return check


def test_alice_runs_the_check_and_bob_sees_its_result_beside_her_name(
    server: str, browser: Any, alice: User, bob: User, appointment: Appointment
) -> None:
    phone = signed_in_page(browser, server, alice, **PHONE)
    phone.goto(f"{server}/consults/{appointment.pk}/check/")
    phone.locator("[data-action=start]").click()
    phone.wait_for_function("() => window.telemedCheck.cameraOk && window.telemedCheck.microphoneOk")
    assert phone.locator("[data-preview]").evaluate("(v) => v.srcObject !== null")
    # The fake microphone beeps: the meter moves.
    phone.wait_for_function("() => window.telemedCheck.maxLevel > 0")
    # The test sound plays while the network test runs.
    phone.locator("[data-action=tone]").click()
    phone.wait_for_function("() => window.telemedCheck.tonesPlayed === 1")
    phone.wait_for_function("() => window.telemedCheck.stage === 'done'", timeout=CHECK_DONE_MS)

    check = phone.evaluate("window.telemedCheck")
    measured, result = check["measured"], check["result"]
    assert measured["camera_ok"] is True and measured["microphone_ok"] is True
    assert measured["rtt_ms"] is not None and measured["rtt_ms"] < 500, check
    assert measured["bitrate_kbps"] >= 250, check  # loopback: the probe's 500 kbps comes back
    assert measured["relay_ok"] is None  # no TURN here
    assert result["recommendation"] == "video", check
    assert check["sessions"] == 1  # no relay test without TURN
    panel = phone.locator("[data-result]")
    assert panel.is_visible()
    assert "Video" in panel.inner_text()
    assert "Your connection is good enough for a video consult." in panel.inner_text()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360

    kept = Consult.objects.get(appointment=appointment).check_result
    assert kept["recommendation"] == "video"
    assert kept["rtt_ms"] == measured["rtt_ms"]
    assert kept["bitrate_kbps"] == measured["bitrate_kbps"]

    # She waits in the room; Bob's dashboard shows her with her check.
    phone.locator("[data-join]").click()
    phone.wait_for_function("() => window.telemedConsult && window.telemedConsult.consultState === 'waiting'")
    dashboard = signed_in_page(browser, server, bob, viewport={"width": 1280, "height": 800})
    dashboard.goto(f"{server}/")
    listed = dashboard.locator("[data-waiting-list] li", has_text="Alice")
    listed.wait_for()
    assert "Check: video" in listed.inner_text()
    assert phone.errors == [] and dashboard.errors == []
    phone.context.close()
    dashboard.context.close()


def test_the_device_choice_is_kept_for_the_room(
    server: str, browser: Any, alice: User, appointment: Appointment
) -> None:
    phone = signed_in_page(browser, server, alice, **PHONE)
    _run_check(phone, server, appointment)
    microphones = phone.locator("[data-device=audioinput] option")
    assert microphones.count() >= 1
    chosen = microphones.nth(microphones.count() - 1).get_attribute("value")
    phone.locator("[data-device=audioinput]").select_option(chosen)
    phone.wait_for_function("() => window.telemedCheck.microphoneOk")
    saved = json.loads(phone.evaluate("localStorage.getItem('telemed.consult.devices')"))
    assert saved["audioinput"] == chosen
    phone.reload()  # the next visit opens the chosen microphone
    phone.locator("[data-action=start]").click()
    phone.wait_for_function("() => window.telemedCheck.microphoneOk")
    assert phone.locator("[data-device=audioinput]").input_value() == chosen
    assert phone.errors == []
    phone.context.close()


def test_without_camera_and_microphone_it_says_so_and_still_tests_the_network(
    server: str, browser: Any, alice: User, appointment: Appointment
) -> None:
    phone = signed_in_page(browser, server, alice, **PHONE)
    phone.add_init_script(DENY_MEDIA)
    check = _run_check(phone, server, appointment)
    assert check["mediaStatus"] == "media_denied"
    assert "blocked" in phone.locator("[data-media-status]").inner_text()
    assert phone.locator("[data-action=media-retry]").is_visible()
    measured = check["measured"]
    assert measured["camera_ok"] is False and measured["microphone_ok"] is False
    assert measured["rtt_ms"] is not None  # the network was tested all the same
    assert measured["bitrate_kbps"] >= 250  # the probe needs no camera
    assert check["result"]["recommendation"] == "chat"
    assert "microphone is not available" in phone.locator("[data-result-explanation]").inner_text()
    assert Consult.objects.get(appointment=appointment).check_result["recommendation"] == "chat"
    assert phone.errors == []
    phone.context.close()


def test_with_turn_configured_the_relay_path_is_tested(
    turn_server: str,
    browser: Any,
    turn: Turn,
    alice: User,
    appointment: Appointment,
) -> None:
    phone = signed_in_page(browser, turn_server, alice, **PHONE)
    check = _run_check(phone, turn_server, appointment)
    assert check["turn"] is True
    assert check["iceServers"][0]["urls"] == [turn.url]
    assert check["sessions"] == 2  # the test, then a relay-only connection
    assert check["measured"]["relay_ok"] is True, (check, turn.log.read_text()[-3000:])
    assert Consult.objects.get(appointment=appointment).check_result["relay_ok"] is True
    assert "works" in phone.locator("[data-figure=relay_ok]").inner_text()
    assert phone.errors == []
    phone.context.close()


def test_when_coturn_refuses_the_credentials_the_relay_path_fails(
    wrong_turn_server: str, browser: Any, alice: User, appointment: Appointment
) -> None:
    phone = signed_in_page(browser, wrong_turn_server, alice, **PHONE)
    check = _run_check(phone, wrong_turn_server, appointment)
    assert check["measured"]["relay_ok"] is False
    assert check["result"]["recommendation"] == "video"  # the direct path still works
    assert Consult.objects.get(appointment=appointment).check_result["relay_ok"] is False
    assert phone.errors == []
    phone.context.close()
