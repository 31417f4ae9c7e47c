"""The doctor's "Waiting now", live, through the real pages: Bob's dashboard
stays open while Alice, in another browser context, runs a check, enters
the room and leaves; his list follows without a reload. Against Daphne
serving HTTP and WebSockets (forked on the test database: see
consult_helpers)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from apps.accounts.models import User
from apps.clinics.models import Clinic
from apps.scheduling.models import Appointment
from tests.browser.consult_helpers import (
    IN_MEMORY_LAYER,
    call_browser,
    daphne_server,
    everyone_left,
    open_video_appointment,
    signed_in_page,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHECK = {"rtt_ms": 480, "loss_pct": 7, "bitrate_kbps": 90, "relay_ok": None, "recommendation": "audio"}
# What a pre-call check page does: its own socket to the room, a check result, then it closes.
RUN_CHECK = """async ([path, result]) => {
  const ws = new WebSocket(`ws://${location.host}${path}`);
  const next = (type) => new Promise((resolve, reject) => {
    ws.onmessage = (event) => { if (JSON.parse(event.data).type === type) resolve(); };
    ws.onclose = (event) => reject(new Error(`closed ${event.code}`));
  });
  await next("welcome");
  const stored = next("check");
  ws.send(JSON.stringify({type: "check", result}));
  await stored;
  window.checkSocket = ws;
}"""


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


def _changes(page: Any) -> int:
    return int(page.evaluate("window.telemedWaiting.changes"))


def test_the_doctors_dashboard_shows_who_is_waiting_live(
    server: str, browser: Any, alice: User, bob: User, appointment: Appointment
) -> None:
    dashboard = signed_in_page(browser, server, bob, viewport={"width": 1280, "height": 800})
    dashboard.goto(f"{server}/")
    dashboard.wait_for_function("() => window.telemedWaiting && window.telemedWaiting.socketState === 'open'")
    dashboard.wait_for_function("() => window.telemedWaiting.lists >= 1")
    empty = dashboard.locator("[data-waiting-empty]")
    assert empty.is_visible()
    dashboard.evaluate("window.neverReloaded = true")
    listed = dashboard.locator("[data-waiting-list] li", has_text="Alice")

    # Alice, on her phone, runs the pre-call check: she is there, with her result.
    phone = signed_in_page(browser, server, alice, viewport={"width": 360, "height": 740}, is_mobile=True)
    phone.goto(f"{server}/")
    phone.evaluate(RUN_CHECK, [f"/ws/consults/{appointment.pk}/", CHECK])
    listed.locator(".badge", has_text="Check: audio only").wait_for()
    assert re.fullmatch(r"waiting since \d\d:\d\d", listed.locator("[data-waiting-when]").inner_text())
    assert listed.locator("a").get_attribute("href") == f"/consults/{appointment.pk}/"
    assert not empty.is_visible()

    # The check page closes: she is gone for a moment ...
    seen = _changes(dashboard)
    phone.evaluate("window.checkSocket.close()")
    dashboard.wait_for_function(f"() => window.telemedWaiting.changes > {seen}")
    empty.wait_for(state="visible")

    # ... and enters the room: back in the list, her check result with her.
    phone.goto(f"{server}/consults/{appointment.pk}/")
    listed.locator(".badge", has_text="Check: audio only").wait_for()
    assert listed.count() == 1

    # Bob opens her room from the list (one click) and starts: his list says so.
    room = dashboard.context.new_page()
    room.goto(f"{server}{listed.locator('a').get_attribute('href')}")
    start = room.locator("[data-action=start]")
    start.wait_for(state="visible")
    room.wait_for_function("() => window.telemedConsult.otherPresent === true")
    start.click()
    listed.locator("[data-waiting-when]", has_text="in the consult").wait_for()

    # She leaves: no one is waiting, and his page never reloaded.
    phone.context.close()
    empty.wait_for(state="visible")
    assert dashboard.locator("[data-waiting-list]").is_hidden()
    assert dashboard.evaluate("window.neverReloaded") is True
    assert dashboard.errors == []
    room.close()
    dashboard.context.close()
