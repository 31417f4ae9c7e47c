"""What the consult tests that run the app in real processes share: Daphne
forked on the test database, Chromium started after it, signed-in pages, a
video appointment whose room is open, and reading a call's getStats.

pytest-django's live server speaks WSGI only, so Daphne runs in a forked
process (channels' ``DaphneProcess``) on the test database, which is why
these tests need PostgreSQL: a forked SQLite in-memory database is not
shared."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from functools import partial
from typing import Any

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.db import connections
from django.test import Client
from django.test.utils import override_settings
from django.utils import timezone

from apps.accounts.models import User
from apps.clinics.models import Clinic
from apps.scheduling.models import Appointment
from tests.browser.conftest import CHROMIUM_ARGS
from tests.services import chromium_path, require_postgres

WAIT_MS = 20_000
IN_MEMORY_LAYER = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
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


def _fresh_executor_after_fork() -> None:
    """In the forked child: asgiref's executor for thread-sensitive sync code
    (every ``database_sync_to_async``) was copied from the parent with a
    worker thread that doesn't exist here, once the parent ran async tests.
    Work sent to it would wait forever (Daphne then drops the handshake)."""
    from asgiref.sync import SyncToAsync

    SyncToAsync.single_thread_executor = ThreadPoolExecutor(max_workers=1)


@contextmanager
def daphne_server(django_db_blocker: Any, **overrides: Any) -> Iterator[str]:
    """Daphne on a free port, forked with ``overrides`` applied to its
    settings (the parent's are restored at once), on the test database.
    Fork it before starting Chromium: a process with Playwright's threads
    should not fork. Yields the server's base URL."""
    from channels.testing.live import make_application
    from daphne.testing import DaphneProcess

    process = DaphneProcess(
        "127.0.0.1",
        partial(make_application, static_wrapper=ASGIStaticFilesHandler),
        setup=_fresh_executor_after_fork,
    )
    process.daemon = True
    with django_db_blocker.unblock():  # forked while unblocked: the server may use the database
        require_postgres()
        connections.close_all()  # the child must not share the parent's connection
        with override_settings(**overrides):
            process.start()
    try:
        assert process.ready.wait(timeout=30), "Daphne did not start"
        yield f"http://127.0.0.1:{process.port.value}"
    finally:
        process.terminate()
        process.join(timeout=10)


@contextmanager
def call_browser() -> Iterator[Any]:
    """Chromium for calls: local addresses as host candidates (no mDNS) and
    sound that may play without a tap."""
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


def open_video_appointment(alice: User, bob: User, clinic: Clinic) -> Appointment:
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


def everyone_left(appointment: Appointment, *, timeout_s: float = 15.0) -> bool:
    """Wait until the servers have recorded every participant's leaving: a
    server still writing while the test database is flushed deadlocks the
    flush."""
    from apps.consults.models import ConsultPresence

    deadline = time.monotonic() + timeout_s
    while ConsultPresence.objects.filter(consult__appointment=appointment).exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def session_cookie(user: User) -> str:
    """A fresh session of ``user``, stored in the test database."""
    client = Client()
    client.force_login(user)
    return str(client.cookies["sessionid"].value)


def signed_in_page(browser: Any, server: str, user: User, **context: Any) -> Any:
    ctx = browser.new_context(**context)
    ctx.add_cookies([{"name": "sessionid", "value": session_cookie(user), "url": server}])
    page = ctx.new_page()
    page.set_default_timeout(WAIT_MS)
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    return page


def inbound(page: Any, kind: str) -> dict[str, int]:
    result: dict[str, int] = page.evaluate(INBOUND, kind)
    return result


def grows(page: Any, kind: str, field: str) -> bool:
    """Whether the count goes up between two samples (a few tries: frames
    may take a moment to come after connecting)."""
    before = inbound(page, kind)[field]
    for _ in range(10):
        page.wait_for_timeout(700)
        if inbound(page, kind)[field] > before:
            return True
    return False


def state(page: Any, field: str) -> Any:
    return page.evaluate(f"window.telemedConsult.{field}")


def wait_connected(*pages: Any) -> None:
    for page in pages:
        page.wait_for_function(
            "() => window.telemedConsult.pc && window.telemedConsult.pc.connectionState === 'connected'"
        )
