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
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from apps.core import demo
from tests.browser.conftest import CHROMIUM_ARGS
from tests.browser.consult_helpers import WAIT_MS, grows, inbound, wait_connected
from tests.core.test_security_headers import _free_port
from tests.core.test_settings import ROOT
from tests.services import chromium_path

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


def _sign_in(embedded: EmbeddedTelemed, page: Any, email: str, *, staff: bool = False) -> None:
    """Sign a demo account in with the demo password; staff also give the
    current code of their (demo) authenticator."""
    page.goto(embedded.url + "/accounts/login/")
    page.locator("input[name=login]").fill(email)
    page.locator("input[name=password]").fill(demo.DEMO_PASSWORD)
    page.locator("main form button[type=submit]").click()
    if staff:
        # A code read just before its 30 s step ends may be stale when it
        # arrives (the command takes seconds on a busy machine): one more try.
        for attempt in (1, 2):
            page.locator("input[name=code]").fill(embedded.manage("demo_totp", email).strip())
            page.locator("main form button[type=submit]").first.click()
            try:
                page.wait_for_url(embedded.url + "/", timeout=10_000 if attempt == 1 else None)
            except PlaywrightTimeoutError:
                if attempt == 2 or page.locator("input[name=code]").count() == 0:
                    raise
            else:
                return
    page.wait_for_url(embedded.url + "/")


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
    _sign_in(embedded, page, "zhang.wei@example.org")
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
    _sign_in(embedded, page, "admin.zhao@example.org", staff=True)
    page.locator("main li", has_text=clinic).locator("a[href$='/calendar/']").click()
    page.goto(page.url.split("?")[0] + f"?day={day}&span=day")
    row = page.locator("main tr", has_text="张伟").filter(has_text=time_of_day)
    assert row.count() == 1
    assert doctor in row.inner_text()
    admin.close()


# Chromium for calls (as consult_helpers.call_browser): local addresses as
# host candidates (no mDNS) and sound that plays without a tap.
CALL_ARGS = [
    *CHROMIUM_ARGS,
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]
CHECK_DONE_MS = 60_000  # connect, ~8 s of measuring: generous on a busy machine


def _video_stops_and_audio_flows(page: Any) -> bool:
    """Two samples a second apart with no new video frame, while audio
    packets kept coming in between (a few tries: the switch takes a moment)."""
    for _ in range(15):
        before = inbound(page, "video")["frames"], inbound(page, "audio")["packets"]
        page.wait_for_timeout(1000)
        after = inbound(page, "video")["frames"], inbound(page, "audio")["packets"]
        if after[0] == before[0]:
            return after[1] > before[1]
    return False


def test_the_demo_patient_and_the_demo_doctor_hold_a_video_consult_in_embedded_mode(
    embedded: EmbeddedTelemed, browser: Any
) -> None:
    """The video-consult issue's "done when": after `make run`, the demo
    patient and the demo doctor hold a video consult on one machine with no
    outside network (the pre-call check's echo peer runs inside the same
    Daphne), and the audio-only switch and the chat work."""
    chromium = browser.browser_type.launch(executable_path=chromium_path(), args=CALL_ARGS, headless=True)
    try:
        _hold_the_demo_consult(embedded, chromium)
    finally:
        chromium.close()


def _hold_the_demo_consult(embedded: EmbeddedTelemed, chromium: Any) -> None:
    pages = []
    for email, context in (
        (demo.SOON_DOCTOR, {"viewport": {"width": 1280, "height": 800}, "locale": "en-GB"}),
        (demo.SOON_PATIENT, {"viewport": {"width": 360, "height": 740}, "locale": "zh-CN", "is_mobile": True}),
    ):
        page = chromium.new_context(**context).new_page()
        page.set_default_timeout(WAIT_MS)
        page.errors = []
        page.on("pageerror", lambda error, page=page: page.errors.append(str(error)))
        _sign_in(embedded, page, email, staff=email == demo.SOON_DOCTOR)
        pages.append(page)
    doctor, patient = pages

    # The doctor's home page: nobody waits yet.
    waiting = doctor.locator("[data-waiting-list] li", has_text="张伟")
    assert waiting.count() == 0
    doctor.wait_for_timeout(1000)  # the waiting room's socket connects

    # The patient finds the demo appointment and tests her camera and network
    # against the server's echo peer.
    patient.goto(embedded.url + "/appointments/")
    patient.locator("main section.card", has_text=demo.SOON_REASON).locator("a").first.click()
    patient.wait_for_url(re.compile(r".*/appointments/\d+/$"))
    detail = patient.url
    patient.locator("[data-consult-join] [data-consult-check-link]").click()
    patient.locator("[data-action=start]").click()
    patient.wait_for_function(
        "() => ['done', 'refused', 'error'].includes(window.telemedCheck.stage)", timeout=CHECK_DONE_MS
    )
    check = patient.evaluate("window.telemedCheck")
    assert check["stage"] == "done", check
    assert check["iceServers"] == [], check  # nothing on the internet
    assert check["result"]["recommendation"] == "video", check
    assert patient.locator("[data-result]").is_visible()
    assert "视频" in patient.locator("[data-result-label]").inner_text()

    # She waits in the room; the doctor sees her arrive without reloading.
    patient.locator("[data-join]").click()
    patient.wait_for_function("() => window.telemedConsult && window.telemedConsult.consultState === 'waiting'")
    waiting.wait_for()
    waiting.locator("a").click()
    start = doctor.locator("[data-action=start]")
    start.wait_for(state="visible")
    start.click()

    wait_connected(patient, doctor)
    for page in (patient, doctor):
        assert grows(page, "video", "frames"), "no video frames decoded"
        assert grows(page, "audio", "packets"), "no audio"
        assert page.evaluate("window.telemedConsult.iceServers") == []

    # The doctor switches to audio only: the patient stops receiving video
    # and still hears him.
    doctor.locator("[data-action=audio-only]").click()
    patient.wait_for_function("() => window.telemedConsult.mediaMode === 'audio'")
    assert patient.locator("[data-remote-note]").is_visible()
    assert _video_stops_and_audio_flows(patient), "the patient still receives video, or no audio"

    # Chat both ways.
    patient.locator("[data-chat-form] input[name=body]").fill("医生您好，我头疼")
    patient.locator("[data-chat-form] button[type=submit]").click()
    doctor.locator("[data-chat-log] li", has_text="医生您好，我头疼").wait_for()
    doctor.locator("[data-chat-form] input[name=body]").fill("从什么时候开始的？")
    doctor.locator("[data-chat-form] input[name=body]").press("Enter")
    patient.locator("[data-chat-log] li", has_text="从什么时候开始的？").wait_for()

    # The doctor ends the consult: both pages say so, and the appointment is completed.
    doctor.locator("[data-action=end]").click()
    for page in (patient, doctor):
        page.locator("[data-ended]").wait_for(state="visible")
        assert page.evaluate("window.telemedConsult.consultState") == "ended"
    patient.goto(detail)
    assert "已完成" in patient.locator("main dl").inner_text()
    assert patient.locator("[data-consult-join]").count() == 0
    assert patient.errors == [] and doctor.errors == []
    for page in (patient, doctor):
        page.context.close()


def _unread(page: Any) -> int:
    badge = page.locator("[data-unread-count]")
    text = badge.inner_text().strip() if badge.is_visible() else ""
    return int(text) if text.isdigit() else 0


def test_the_demo_patient_records_and_reads_his_vitals_and_a_crisis_reaches_his_doctor_live(
    embedded: EmbeddedTelemed, browser: Any
) -> None:
    """The vitals issue's "done when": after `make run`, 张伟 on his phone
    enters a blood pressure and sees it charted, reads the analysis of his
    demo ECG (MIT-BIH record 100, analysed by seed_demo) on the tracing, and
    a hypertensive crisis he enters reaches 王建国's open page live."""
    doctor_context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    doctor = doctor_context.new_page()
    doctor.set_default_timeout(20_000)
    _sign_in(embedded, doctor, demo.SOON_DOCTOR, staff=True)
    unread_before = _unread(doctor)
    doctor.wait_for_timeout(1500)  # the page's socket connects

    patient_context = browser.new_context(
        viewport={"width": 360, "height": 740}, locale="zh-CN", is_mobile=True, has_touch=True
    )
    page = patient_context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    _sign_in(embedded, page, demo.BP_PATIENT)

    # A blood pressure, entered on the phone, in the table and the chart.
    page.goto(embedded.url + "/vitals/new/blood_pressure/")
    assert page.locator("input[name=systolic]").get_attribute("inputmode") in {"numeric", "decimal"}
    page.locator("input[name=systolic]").fill("145")
    page.locator("input[name=diastolic]").fill("92")
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/vitals/readings/\d+/$"))
    page.goto(embedded.url + "/vitals/?kind=blood_pressure&period=30")
    assert "145/92" in page.locator("table.vitals-table tbody tr").first.inner_text()
    page.wait_for_selector("[data-vitals-chart][data-state=drawn]")
    figure = page.locator("[data-vitals-chart] figure[data-kind=blood_pressure]")
    assert int(figure.get_attribute("data-points") or 0) >= 20  # the month behind it, from the demo data
    assert figure.locator("canvas").count() == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    # His demo ECG: done, with its heart rate and the tracing drawn.
    page.goto(embedded.url + "/vitals/ecg/")
    page.locator("main table a[href*='/vitals/ecg/']").first.click()
    page.wait_for_url(re.compile(r".*/vitals/ecg/\d+/$"))
    assert page.locator("[data-ecg-status]").get_attribute("data-finished") == "true"
    assert "平均 76 次/分" in page.locator(".ecg-numbers").inner_text()  # heart rate: mean 76/min
    page.wait_for_function("() => Number(document.querySelector('[data-ecg-viewer]').dataset.drawnSamples) > 500")
    page.wait_for_function("() => Number(document.querySelector('[data-ecg-viewer]').dataset.rMarkers) >= 3")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    # A crisis: the doctor's open page shows it without a reload.
    page.goto(embedded.url + "/vitals/new/blood_pressure/")
    page.locator("input[name=systolic]").fill("190")
    page.locator("input[name=diastolic]").fill("125")
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/vitals/readings/\d+/$"))
    toast = doctor.locator("[data-toasts] .toast")
    toast.first.wait_for(timeout=30_000)
    notice = toast.first.inner_text()
    assert "危急读数：张伟" in notice  # "Critical reading: 张伟", with the reading and its link
    assert "高血压危象" in notice  # the category: hypertensive crisis
    doctor.wait_for_function(
        f"() => Number(document.querySelector('[data-unread-count]').textContent) > {unread_before}"
    )
    assert errors == []
    patient_context.close()
    doctor_context.close()


SEVERITY_RANK = {"critical": 0, "urgent": 1, "attention": 2}


def test_the_demo_doctors_dashboard_and_a_chart_in_embedded_mode(embedded: EmbeddedTelemed, browser: Any) -> None:
    """The doctor-workspace issue's "done when": after `make run`, the demo
    doctor's dashboard shows today's consults and the live waiting room, the
    demo alerts in triage order and the referral to him; My patients lists
    his patients, and a chart opens with the signed note's diagnoses."""
    doctor_context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    doctor = doctor_context.new_page()
    doctor.set_default_timeout(20_000)
    errors: list[str] = []
    doctor.on("pageerror", lambda error: errors.append(str(error)))
    _sign_in(embedded, doctor, demo.DEMO_DOCTOR, staff=True)

    # Today: the demo video consult, upcoming; nobody waits yet.
    today = doctor.locator("[data-today] tbody tr", has_text="张伟")
    assert today.count() == 1
    assert demo.SOON_REASON in today.inner_text()
    assert today.get_attribute("class") == "day-upcoming"
    assert doctor.locator("[data-waiting-empty]").is_visible()

    # Triage: the demo alerts, critical before urgent, each with its reading.
    items = doctor.locator("[data-triage] [data-alert-id]")
    assert items.count() == 4
    severities = [
        next(
            c.removeprefix("severity-")
            for c in (item.get_attribute("class") or "").split()
            if c.startswith("severity-")
        )
        for item in items.all()
    ]
    assert severities == sorted(severities, key=SEVERITY_RANK.__getitem__)
    assert severities.count("critical") == 2 and severities.count("urgent") == 2
    triage = doctor.locator("[data-triage]").inner_text()
    for text in ("张伟", "184/112", "176/110", "刘芳", "128", "李娜", "2.8"):
        assert text in triage, text
    assert doctor.locator("[data-glance-alerts]").inner_text() == "4"
    assert "李娜" in doctor.locator("#referrals").inner_text()
    assert "李秀英" in doctor.locator("#referrals").inner_text()

    # 张伟 waits in the room on his phone: the waiting room and Today show it live.
    doctor.wait_for_function("() => window.telemedWaiting && window.telemedWaiting.socketState === 'open'")
    patient_context = browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN", is_mobile=True)
    patient = patient_context.new_page()
    patient.set_default_timeout(20_000)
    _sign_in(embedded, patient, demo.SOON_PATIENT)
    patient.goto(embedded.url + "/appointments/")
    patient.locator("main section.card", has_text=demo.SOON_REASON).locator("a").first.click()
    patient.locator("[data-consult-join] a.button").click()
    patient.wait_for_function("() => window.telemedConsult && window.telemedConsult.consultState === 'waiting'")
    doctor.locator("[data-waiting-list] li", has_text="张伟").wait_for()
    doctor.locator("[data-today] tr.day-waiting", has_text="张伟").wait_for()
    assert doctor.locator("[data-glance-waiting]").inner_text() == "1"
    patient_context.close()

    # My patients: his three, not the others.
    doctor.goto(embedded.url + "/care/patients/")
    rows = doctor.locator("main table tbody tr")
    names = {row.locator("td").first.locator("strong").inner_text() for row in rows.all()}
    assert names == {"张伟", "李娜", "刘芳"}

    # 张伟's chart: the problem list from last week's signed note, the open alerts, his ECG.
    rows.filter(has_text="张伟").locator("a").first.click()
    doctor.wait_for_url(re.compile(r".*/care/patients/\d+/$"))
    assert doctor.locator("h1").inner_text() == "张伟"
    chart = doctor.locator("main").inner_text()
    for text in ("I10", "E66.3", demo.NOTE_FIELDS["assessment"], "184/112", "mitdb-100.zip"):
        assert text in chart, text
    assert errors == []
    doctor_context.close()
