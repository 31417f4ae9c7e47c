"""The doctor's triage queue, live, in a real browser: Bob's dashboard is
open when Alice's crisis reading is recorded; the alert appears in his
queue without a reload, and he acknowledges it with a note (htmx) and it
leaves. Against Daphne serving HTTP and WebSockets in embedded mode (the
in-memory layer: the notification socket finds the worker's delivery in
the database), forked on the test database (see consult_helpers)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from django.utils import timezone

from apps.accounts.models import User
from apps.clinics.models import Clinic
from apps.scheduling.models import Appointment
from apps.vitals.models import Alert
from apps.vitals.services import reading_record
from tests.browser.consult_helpers import (
    IN_MEMORY_LAYER,
    call_browser,
    daphne_server,
    everyone_left,
    open_video_appointment,
    signed_in_page,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

T = TypeVar("T")
CRISIS = {"systolic": 190, "diastolic": 110, "pulse": 88}


def _in_another_thread(work: Callable[[], T]) -> T:
    """As another process would: Playwright's event loop runs in this thread,
    where the in-app delivery's async_to_sync may not."""
    from django.db import connection

    def run() -> T:
        try:
            return work()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result(timeout=30)


@pytest.fixture(scope="module")
def server(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    with daphne_server(django_db_blocker, CHANNEL_LAYERS=IN_MEMORY_LAYER, NOTIFICATIONS_EMBEDDED_POLL_S=0.3) as url:
        yield url


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Any]:
    """Started after the server has forked."""
    with call_browser() as browser:
        yield browser


def test_a_critical_reading_arrives_live_and_is_acknowledged(
    server: str, browser: Any, alice: User, bob: User, clinic: Clinic
) -> None:
    starts_at = timezone.now().replace(microsecond=0) - timedelta(days=7)
    Appointment.objects.create(
        patient=alice,
        doctor=bob,
        clinic=clinic,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=20),
        mode="video",
        booked_by=alice,
        status="completed",
    )
    dashboard = signed_in_page(browser, server, bob, viewport={"width": 1280, "height": 800})
    dashboard.goto(f"{server}/")
    # The notification socket is open: its first message made the page re-read the queue.
    dashboard.wait_for_function("() => window.telemedDashboard && window.telemedDashboard.refreshes >= 1")
    assert dashboard.locator("[data-triage] [data-alert-id]").count() == 0
    dashboard.evaluate("window.neverReloaded = true")

    recorded = _in_another_thread(
        lambda: reading_record(
            patient=alice,
            by=alice,
            kind="blood_pressure",
            values=CRISIS,
            measured_at=timezone.now() - timedelta(minutes=1),
            source="manual",
        )
    )
    assert recorded.alert is not None
    item = dashboard.locator(f'[data-alert-id="{recorded.alert.pk}"]')
    item.wait_for()
    assert "190/110 mmHg" in item.inner_text()
    assert "Alice" in item.inner_text()
    assert dashboard.locator("[data-glance-alerts]").inner_text() == "1"

    item.locator("input[name=note]").fill("Called her: resting, recheck in an hour")
    item.get_by_role("button", name="Acknowledge").click()
    item.wait_for(state="detached")
    dashboard.locator("[data-triage]", has_text="No open alerts.").wait_for()
    assert dashboard.locator("[data-glance-alerts]").inner_text() == "0"
    assert dashboard.evaluate("window.neverReloaded") is True
    assert dashboard.errors == []

    alert = Alert.objects.get(pk=recorded.alert.pk)
    assert alert.status == "acknowledged"
    assert alert.acknowledge_note == "Called her: resting, recheck in an hour"
    dashboard.context.close()


# What a patient's consult page does, in short: its socket to the room.
ENTER_ROOM = """async (path) => {
  const ws = new WebSocket(`ws://${location.host}${path}`);
  await new Promise((resolve, reject) => {
    ws.onmessage = (event) => { if (JSON.parse(event.data).type === "welcome") resolve(); };
    ws.onclose = (event) => reject(new Error(`closed ${event.code}`));
  });
  window.roomSocket = ws;
}"""


def test_today_follows_the_waiting_room(server: str, browser: Any, alice: User, bob: User, clinic: Clinic) -> None:
    booked = open_video_appointment(alice, bob, clinic)
    try:
        dashboard = signed_in_page(browser, server, bob, viewport={"width": 1280, "height": 800})
        dashboard.goto(f"{server}/")
        row = dashboard.locator("[data-today] tbody tr", has_text="Alice")
        assert row.get_attribute("class") == "day-upcoming"
        dashboard.wait_for_function("() => window.telemedWaiting && window.telemedWaiting.socketState === 'open'")
        dashboard.evaluate("window.neverReloaded = true")

        phone = signed_in_page(browser, server, alice, viewport={"width": 360, "height": 740}, is_mobile=True)
        phone.goto(f"{server}/")
        phone.evaluate(ENTER_ROOM, f"/ws/consults/{booked.pk}/")
        dashboard.locator("[data-today] tr.day-waiting", has_text="Alice").wait_for()
        assert dashboard.locator("[data-glance-waiting]").inner_text() == "1"
        start = dashboard.locator("[data-today] tr.day-waiting a", has_text="Start")
        assert start.get_attribute("href") == f"/consults/{booked.pk}/"

        phone.context.close()  # she leaves: upcoming again
        dashboard.locator("[data-today] tr.day-upcoming", has_text="Alice").wait_for()
        assert dashboard.locator("[data-glance-waiting]").inner_text() == "0"
        assert dashboard.evaluate("window.neverReloaded") is True
        assert dashboard.errors == []
        dashboard.context.close()
    finally:
        everyone_left(booked)
