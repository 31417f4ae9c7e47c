"""`make run` as a newcomer meets it: Daphne, a Celery worker and beat in
embedded mode. Signing up by phone shows the code in the outbox page and in
the log, and an in-app notification reaches an open page live."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.core.test_security_headers import _free_port
from tests.core.test_settings import ROOT

pytestmark = pytest.mark.browser


class EmbeddedTelemed:
    def __init__(self, var_dir: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"}}
        self.env["TELEMED_VAR_DIR"] = str(var_dir)
        self.env["PYTHONUNBUFFERED"] = "1"
        self.log = var_dir / "run.log"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def start(self) -> None:
        for step in (["migrate", "--noinput"], ["seed_demo"], ["collectstatic", "--noinput", "-v", "0"]):
            self.manage(*step)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "run_embedded", "--port", str(self.port)],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(self.url + "/healthz")
                return
            except httpx.TransportError:
                assert self.process.poll() is None, self.log.read_text()
                assert time.monotonic() < deadline, "Telemed did not start"
                time.sleep(0.3)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[EmbeddedTelemed]:
    telemed = EmbeddedTelemed(tmp_path)
    try:
        telemed.start()
        yield telemed
    finally:
        telemed.stop()


def test_phone_sign_up_and_a_live_notification_in_embedded_mode(embedded: EmbeddedTelemed, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN", is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(embedded.url + "/accounts/signup/")
    page.locator("input[name=full_name]").fill("赵敏")
    page.locator("input[name=phone]").fill("139 0013 9555")
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/accounts/phone/verify/.*"))

    # The code reaches the outbox page (through the worker) ...
    outbox = context.new_page()
    code = None
    deadline = time.monotonic() + 30
    while code is None:
        outbox.goto(embedded.url + "/notifications/outbox/")
        match = re.search(r"\+8613900139555.*?(\d{6})", outbox.locator("table").inner_text(), re.S)
        code = match.group(1) if match else None
        assert code or time.monotonic() < deadline, "no code in the outbox"
        if code is None:
            time.sleep(0.5)
    # ... and the log.
    assert "SMS to +8613900139555" in embedded.log.read_text()
    assert code in embedded.log.read_text()

    page.locator("input[name=code]").fill(code)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(embedded.url + "/")
    assert page.locator("h1").inner_text() == "您好，赵敏"
    page.wait_for_timeout(1500)  # the page's socket connects

    # Something happens elsewhere (here: a command in another process); the
    # worker delivers it and the open page shows it without a reload.
    embedded.manage(
        "shell",
        "-c",
        "from apps.accounts.models import User; from apps.notifications.services import notification_send; "
        "notification_send(recipient=User.objects.get(phone='+8613900139555'), category='account', "
        "template='account/welcome', context={}, idempotency_key='live-demo', channels=['in_app'])",
    )
    toast = page.locator("[data-toasts] .toast")
    toast.first.wait_for(timeout=20_000)
    assert "欢迎使用 Telemed" in toast.first.inner_text()
    assert page.locator("[data-unread-count]").inner_text() == "2"  # the sign-up welcome and this one
    context.close()


def test_a_newcomer_books_as_a_demo_patient_and_the_clinic_admin_sees_it(
    embedded: EmbeddedTelemed, browser: Any
) -> None:
    """The scheduling issue's "done when": after `make run`, a demo patient
    books in a few taps, the clinic admin sees it on the calendar, and the
    SMS confirmation is in the outbox."""
    patient = browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN", is_mobile=True)
    page = patient.new_page()
    page.set_default_timeout(20_000)
    page.goto(embedded.url + "/accounts/login/")
    page.locator("input[name=login]").fill("zhang.wei@example.org")
    page.locator("input[name=password]").fill("telemed-demo-2026")
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(embedded.url + "/")
    page.goto(embedded.url + "/appointments/find/")
    first = page.locator("main section.card").first
    doctor = first.locator("h2").inner_text()
    first.locator("a.button").click()
    page.locator("main .slots a.slot").first.click()
    when = page.locator("main .card strong").first.inner_text()  # e.g. "星期三 2026-12-02 08:30"
    day, time_of_day = when.split()[-2:]
    clinic = page.locator("main .card p").nth(1).inner_text().split(" · ")[-1]
    page.locator("main form button[type=submit]").click()  # video is chosen already
    page.wait_for_url(embedded.url + "/appointments/")
    assert page.locator("main section.card", has_text=f"{day} {time_of_day}").count() == 1
    patient.close()

    # The booking SMS reaches the outbox (through the Celery worker).
    outbox = browser.new_page()
    deadline = time.monotonic() + 30
    while True:
        outbox.goto(embedded.url + "/notifications/outbox/")
        table = outbox.locator("table").inner_text()
        if "+8613800138001" in table and f"{day} {time_of_day}" in table:
            break
        assert time.monotonic() < deadline, "no booking SMS in the outbox"
        time.sleep(0.5)
    outbox.close()

    admin = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB")
    page = admin.new_page()
    page.set_default_timeout(20_000)
    page.goto(embedded.url + "/accounts/login/")
    page.locator("input[name=login]").fill("admin.zhao@example.org")
    page.locator("input[name=password]").fill("telemed-demo-2026")
    page.locator("main form button[type=submit]").click()
    page.locator("input[name=code]").fill(embedded.manage("demo_totp", "admin.zhao@example.org").strip())
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(embedded.url + "/")
    page.locator("main li", has_text=clinic).locator("a[href$='/calendar/']").click()
    page.goto(page.url.split("?")[0] + f"?day={day}&span=day")
    row = page.locator("main tr", has_text="张伟").filter(has_text=time_of_day)
    assert row.count() == 1
    assert doctor in row.inner_text()
    admin.close()
