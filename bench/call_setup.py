"""Call set-up in Chromium: how long a video call through the app takes to
connect once both people are in the room, beside the floor measured in the
same run — two peer connections in one page with nothing between them.

Telemed runs in embedded mode (``bench.server.embedded_server``: SQLite,
the in-memory channel layer, one Daphne process, as after ``make run``);
``python -m bench.signaling_child seed`` adds the calls' video appointments,
open now, with a signed-in session for each patient and doctor. Chromium
(Playwright, headless) has a fake camera and microphone, no mDNS hiding of
local addresses, no STUN server: the calls connect over host candidates on
this machine.

Every page gets, before its own scripts run, a wrapper of
``RTCPeerConnection`` that notes when each connection is created and when
its ``connectionState`` first becomes ``"connected"`` (the
``connectionstatechange`` event), in ``performance.timeOrigin +
performance.now()`` — a clock the pages of one browser share.

**Through the app** (each call with its own appointment and two fresh
browser contexts): the patient opens the room (a phone screen) and waits;
the doctor opens it and sees the patient there; both local previews are
live (the camera and microphone were acquired when each page joined). The
interval starts when the doctor's Start button is clicked (a click listener
on the button) and ends when both pages' peer connections are connected:
``start`` to the server and ``started`` back, both peer connections made,
perfect negotiation (the doctor's offer, the patient's answer, trickled
candidates, all relayed by the server), ICE and DTLS. The doctor then ends
the call.

**The floor** (a fresh context and one page of the same server each time):
two camera-and-microphone streams with the room's constraints (640x360 at
most 15 fps, echo cancellation, noise suppression, gain control) are
acquired first; the interval starts just before two RTCPeerConnections are
made with the room's configuration (no ICE servers, policy ``all``) and
ends when both are connected. Both add their tracks before the offer (as
both sides of a call do), one offers, the other answers, and candidates
are handed over directly (queued until the remote description is set).

The floor and the app alternate, one warm-up of each first (not counted);
the medians of ``calls`` of each and their ratio are the result (goal: the
app within 3x the floor).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.page_weight import CHROMIUM_ARGS, CHROMIUM_EXECUTABLE
from bench.server import (
    LOG_TAIL_CHARS,
    PROJECT_DIR,
    ServerError,
    embedded_environment,
    embedded_server,
    outcome_measure,
)
from bench.slots import utc_now_text

CALL_SETUP_HEADING = "## Call set-up in Chromium (through the app, beside the floor)"
GOAL_RATIO = 3.0
WAIT_MS = 30_000
SEED_TIMEOUT_S = 300
CALL_ARGS = [
    *CHROMIUM_ARGS,
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]
PHONE = {"viewport": {"width": 360, "height": 740}, "is_mobile": True}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}

# Injected before any script of the page: every RTCPeerConnection notes when
# it was made, when it first connected, and when descriptions were set
# ("local offer", "remote answer"...: the steps of the negotiation).
PEER_CONNECTION_CLOCK = """
(() => {
  const Native = window.RTCPeerConnection;
  if (!Native || window.__benchCalls) return;
  const now = () => performance.timeOrigin + performance.now();
  window.__benchCalls = { peerConnections: [], startedAt: null };
  const entries = new WeakMap();
  const note = (pc, step) => entries.get(pc).events.push([step, now()]);
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      const entry = { createdAt: now(), connectedAt: null, events: [] };
      entries.set(this, entry);
      window.__benchCalls.peerConnections.push(entry);
      this.addEventListener("connectionstatechange", () => {
        if (this.connectionState === "connected" && entry.connectedAt === null) entry.connectedAt = now();
      });
    }
    setLocalDescription(description) {
      const type = description ? description.type : this.signalingState === "have-remote-offer" ? "answer" : "offer";
      note(this, `local ${type}`);
      return description ? super.setLocalDescription(description) : super.setLocalDescription();
    }
    setRemoteDescription(description) {
      note(this, `remote ${description && description.type}`);
      return super.setRemoteDescription(description);
    }
  };
})();
"""
CONNECTED = "() => window.__benchCalls.peerConnections.some((pc) => pc.connectedAt !== null)"
FIRST_CONNECTED = """() => {
  const times = window.__benchCalls.peerConnections.map((pc) => pc.connectedAt).filter((t) => t !== null);
  return times.length ? Math.min(...times) : null;
}"""
FIRST_CREATED = "() => Math.min(...window.__benchCalls.peerConnections.map((pc) => pc.createdAt))"
# When each step of the negotiation first happened on the page (null if never).
FIRST_STEPS = """() => {
  const first = {};
  for (const pc of window.__benchCalls.peerConnections) {
    for (const [step, at] of pc.events) if (!(step in first) || at < first[step]) first[step] = at;
  }
  return first;
}"""
LOCAL_MEDIA_LIVE = """() => {
  const video = document.querySelector("[data-local-video]");
  const stream = video && video.srcObject;
  return Boolean(stream && stream.getVideoTracks().some((track) => track.readyState === "live"));
}"""
MARK_START_CLICK = """() => {
  const button = document.querySelector("[data-action=start]");
  button.addEventListener("click", () => {
    window.__benchCalls.startedAt ??= performance.timeOrigin + performance.now();
  }, { capture: true });
}"""
# The floor: two connections in one page, the room's media and configuration.
FLOOR_CALL = """async () => {
  const audio = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
  const video = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 15, max: 15 } };
  const streams = [];
  for (let i = 0; i < 2; i += 1) {
    const stream = await navigator.mediaDevices.getUserMedia({ audio, video });
    for (const track of stream.getVideoTracks()) track.contentHint = "motion";
    streams.push(stream);
  }
  window.__benchCalls.startedAt = performance.timeOrigin + performance.now();
  const config = { iceServers: [], iceTransportPolicy: "all" };
  const offerer = new RTCPeerConnection(config);
  const answerer = new RTCPeerConnection(config);
  const handOver = (from, to) => {
    const queued = [];
    from.onicecandidate = ({ candidate }) => {
      if (!candidate) return;
      if (to.remoteDescription) to.addIceCandidate(candidate);
      else queued.push(candidate);
    };
    return async () => { for (const candidate of queued.splice(0)) await to.addIceCandidate(candidate); };
  };
  const flushToAnswerer = handOver(offerer, answerer);
  const flushToOfferer = handOver(answerer, offerer);
  streams[0].getTracks().forEach((track) => offerer.addTrack(track, streams[0]));
  streams[1].getTracks().forEach((track) => answerer.addTrack(track, streams[1]));
  const connected = (pc) => new Promise((resolve) => {
    if (pc.connectionState === "connected") return resolve();
    pc.addEventListener("connectionstatechange", () => { if (pc.connectionState === "connected") resolve(); });
  });
  const both = Promise.all([connected(offerer), connected(answerer)]);
  await offerer.setLocalDescription();
  await answerer.setRemoteDescription(offerer.localDescription);
  await flushToAnswerer();
  await answerer.setLocalDescription();
  await offerer.setRemoteDescription(answerer.localDescription);
  await flushToOfferer();
  await both;
  window.__benchFloor = [offerer, answerer, streams];  // kept until the page closes
}"""


@dataclass(frozen=True)
class CallSetupPlan:
    calls: int
    warmups: int = 1


FULL_CALL_SETUP = CallSetupPlan(calls=10)
SMOKE_CALL_SETUP = CallSetupPlan(calls=2)


@dataclass(frozen=True)
class AppCall:
    both_ms: float  # Start clicked -> both connected
    doctor_ms: float  # Start clicked -> the doctor's page connected
    patient_ms: float
    doctor_peer_ms: float  # Start clicked -> the doctor's page made its peer connection (``started`` came back)
    patient_peer_ms: float
    doctor_offer_ms: float  # -> the doctor's page set its offer
    patient_offer_ms: float  # -> the patient's page applied the doctor's offer
    doctor_answer_ms: float  # -> the doctor's page applied the patient's answer
    patient_offered: bool  # the polite patient made an offer too (a collision it then rolled back)


@dataclass
class CallSetupResult:
    plan: CallSetupPlan
    skipped: str | None = None
    error: str | None = None
    measured_at: str = field(default_factory=utc_now_text)
    browser: str = ""
    app: list[AppCall] = field(default_factory=list)
    floor_ms: list[float] = field(default_factory=list)
    load_average: float | None = None

    @property
    def measured(self) -> bool:
        return self.skipped is None

    @property
    def app_median_ms(self) -> float:
        return statistics.median(call.both_ms for call in self.app) if self.app else math.nan

    @property
    def floor_median_ms(self) -> float:
        return statistics.median(self.floor_ms) if self.floor_ms else math.nan

    @property
    def ratio(self) -> float:
        if not self.app or not self.floor_ms or self.floor_median_ms <= 0:
            return math.nan
        return self.app_median_ms / self.floor_median_ms

    @property
    def within_goal(self) -> bool:
        return self.ratio <= GOAL_RATIO

    @property
    def passed(self) -> bool:
        """Every call connected (the ratio against the goal is a finding, not a failure)."""
        return (
            self.skipped is None
            and self.error is None
            and len(self.app) == self.plan.calls
            and len(self.floor_ms) == self.plan.calls
        )


def chromium_missing() -> str | None:
    if os.path.exists(CHROMIUM_EXECUTABLE):
        return None
    return f"Chromium is not installed at {CHROMIUM_EXECUTABLE} (apt-get install -y chromium)"


def call_setup_run(plan: CallSetupPlan) -> CallSetupResult:
    """Run the benchmark; a result that says skipped, failed or what it
    measured. Raises only on interruption, after cleaning up."""
    from playwright.sync_api import Error as PlaywrightError

    return outcome_measure(
        CallSetupResult(plan=plan),
        missing=chromium_missing(),
        needs="Chromium",
        measure=lambda result: _call_setup_measure(plan, result),
        expected=(PlaywrightError,),
    )


def _seed(*, calls: int, var_dir: Path) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="telemed-bench-calls-") as directory:
        path = Path(directory) / "rooms.json"
        command = [sys.executable, "-m", "bench.signaling_child", "seed", str(calls), "calls", str(path)]
        completed = subprocess.run(
            command,
            cwd=PROJECT_DIR,
            env=embedded_environment(var_dir=var_dir),
            capture_output=True,
            text=True,
            timeout=SEED_TIMEOUT_S,
            check=False,
        )
        if completed.returncode != 0:
            output = (completed.stdout + completed.stderr)[-LOG_TAIL_CHARS:]
            raise ServerError(f"seeding the calls failed ({completed.returncode}):\n{output}")
        rooms: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
        return rooms


@contextmanager
def _page(browser: Any, base_url: str, session: str | None, **context_options: Any) -> Iterator[Any]:
    context = browser.new_context(**context_options)
    try:
        if session is not None:
            context.add_cookies([{"name": "sessionid", "value": session, "url": base_url}])
        context.add_init_script(PEER_CONNECTION_CLOCK)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        yield page
    finally:
        context.close()


def app_call(browser: Any, base_url: str, room: dict[str, Any]) -> AppCall:
    url = f"{base_url}/consults/{room['appointment']}/"
    with (
        _page(browser, base_url, room["patient_session"], **PHONE) as patient,
        _page(browser, base_url, room["doctor_session"], **DESKTOP) as doctor,
    ):
        patient.goto(url)
        patient.wait_for_function("() => window.telemedConsult && window.telemedConsult.consultState === 'waiting'")
        patient.wait_for_function(LOCAL_MEDIA_LIVE)
        doctor.goto(url)
        start = doctor.locator("[data-action=start]")
        start.wait_for(state="visible")
        doctor.wait_for_function("() => window.telemedConsult.otherPresent === true")
        doctor.wait_for_function(LOCAL_MEDIA_LIVE)
        doctor.evaluate(MARK_START_CLICK)
        start.click()
        patient.wait_for_function(CONNECTED)
        doctor.wait_for_function(CONNECTED)
        started_at = float(doctor.evaluate("() => window.__benchCalls.startedAt"))
        doctor_at, patient_at = float(doctor.evaluate(FIRST_CONNECTED)), float(patient.evaluate(FIRST_CONNECTED))
        doctor_steps, patient_steps = doctor.evaluate(FIRST_STEPS), patient.evaluate(FIRST_STEPS)

        def step_ms(steps: dict[str, float], step: str) -> float:
            return float(steps[step]) - started_at if step in steps else math.nan

        call = AppCall(
            both_ms=max(doctor_at, patient_at) - started_at,
            doctor_ms=doctor_at - started_at,
            patient_ms=patient_at - started_at,
            doctor_peer_ms=float(doctor.evaluate(FIRST_CREATED)) - started_at,
            patient_peer_ms=float(patient.evaluate(FIRST_CREATED)) - started_at,
            doctor_offer_ms=step_ms(doctor_steps, "local offer"),
            patient_offer_ms=step_ms(patient_steps, "remote offer"),
            doctor_answer_ms=step_ms(doctor_steps, "remote answer"),
            patient_offered="local offer" in patient_steps,
        )
        doctor.locator("[data-action=end]").click()
        for page in (patient, doctor):
            page.locator("[data-ended]").wait_for(state="visible")
    return call


def floor_call(browser: Any, base_url: str) -> float:
    with _page(browser, base_url, None, **DESKTOP) as page:
        page.goto(f"{base_url}/accounts/login/")  # a secure context (127.0.0.1) of the same server
        page.evaluate(FLOOR_CALL)
        started_at = float(page.evaluate("() => window.__benchCalls.startedAt"))
        connected = page.evaluate("() => window.__benchCalls.peerConnections.map((pc) => pc.connectedAt)")
        return max(float(at) for at in connected) - started_at


def _call_setup_measure(plan: CallSetupPlan, result: CallSetupResult) -> None:
    from playwright.sync_api import sync_playwright

    with embedded_server() as server:
        print(f"  seeding {plan.warmups + plan.calls} open video consults with signed-in sessions", flush=True)
        rooms = _seed(calls=plan.warmups + plan.calls, var_dir=server.var_dir)
        result.load_average = os.getloadavg()[0]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM_EXECUTABLE, args=CALL_ARGS, headless=True)
            result.browser = f"Chromium {browser.version}"
            try:
                for index, room in enumerate(rooms):
                    warm_up = index < plan.warmups
                    floor_ms = floor_call(browser, server.base_url)
                    call = app_call(browser, server.base_url, room)
                    label = "warm-up" if warm_up else f"call {index - plan.warmups + 1}/{plan.calls}"
                    print(
                        f"  {label}: floor {floor_ms:.0f} ms, app {call.both_ms:.0f} ms "
                        f"(doctor {call.doctor_ms:.0f}, patient {call.patient_ms:.0f})",
                        flush=True,
                    )
                    if not warm_up:
                        result.floor_ms.append(floor_ms)
                        result.app.append(call)
            finally:
                browser.close()


# --- Report -----------------------------------------------------------------------


def _ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0f}"


def _median(values: list[float]) -> float:
    present = [value for value in values if not math.isnan(value)]
    return statistics.median(present) if present else math.nan


def _verdict(result: CallSetupResult) -> str:
    if math.isnan(result.ratio):
        return "no ratio"
    return f"{'within' if result.within_goal else '**over**'} the goal of {GOAL_RATIO:g}x"


def call_setup_summary_text(result: CallSetupResult) -> str:
    if result.skipped is not None:
        return f"Call set-up: skipped ({result.skipped})"
    if result.error is not None:
        return f"Call set-up: FAILED: {result.error}"
    return (
        f"Call set-up in {result.browser} ({len(result.app)} calls through the app, {len(result.floor_ms)} floor):\n"
        f"  median app {_ms(result.app_median_ms)} ms, floor {_ms(result.floor_median_ms)} ms, "
        f"ratio {result.ratio:.2f} ({_verdict(result).replace('**', '')})"
    )


def call_setup_markdown(result: CallSetupResult) -> str:
    lines = [
        CALL_SETUP_HEADING,
        "",
        "How long a video call takes to connect once both people are in the room, through the app "
        "(Start clicked on the doctor's page until both pages' `RTCPeerConnection.connectionState` is "
        '`"connected"`: `start` and `started` through the server, both peer connections made, perfect '
        "negotiation and trickled candidates relayed over the consult sockets, ICE, DTLS), beside the floor "
        "measured in the same run: two peer connections in one page, with the room's camera and microphone "
        "constraints and configuration, handing each other the offer, the answer and the candidates directly "
        "(from just before they are made until both are connected). In both, the camera and microphone were "
        "acquired before the interval starts. Telemed runs in embedded mode (SQLite, in-memory channel layer, "
        "one Daphne process); headless Chromium with a fake camera and microphone, no STUN (host candidates on "
        "this machine); each call has its own appointment and fresh browser contexts (the patient on a phone "
        "screen), and the doctor ends it afterwards. Both times are read from the pages' "
        "`performance.timeOrigin + performance.now()` by a wrapper of `RTCPeerConnection` that the benchmark "
        "injects before the page's scripts. The floor and the app alternate after one warm-up of each. "
        "`python -m bench --only call-setup` runs just this and rewrites this section.",
        "",
    ]
    if result.skipped is not None:
        lines.append(f"**Skipped**: {result.skipped}.")
        return "\n".join(lines)
    if result.error is not None:
        lines.append(f"**Failed**: {result.error}")
        return "\n".join(lines)
    app = result.app
    lines += [
        "| | calls | median ms | min ms | max ms |",
        "|---|---:|---:|---:|---:|",
        f"| through the app (Start → both connected) | {len(app)} | {_ms(result.app_median_ms)} "
        f"| {_ms(min((c.both_ms for c in app), default=math.nan))} "
        f"| {_ms(max((c.both_ms for c in app), default=math.nan))} |",
        f"| floor (two peer connections in one page) | {len(result.floor_ms)} | {_ms(result.floor_median_ms)} "
        f"| {_ms(min(result.floor_ms, default=math.nan))} | {_ms(max(result.floor_ms, default=math.nan))} |",
        "",
        f"**Ratio app / floor: {result.ratio:.2f}** ({_verdict(result)}).",
        "",
        "Through the app, medians from the click: the doctor's page made its peer connection (`started` came "
        f"back) after {_ms(_median([c.doctor_peer_ms for c in app]))} ms and the patient's after "
        f"{_ms(_median([c.patient_peer_ms for c in app]))} ms; the doctor set its offer after "
        f"{_ms(_median([c.doctor_offer_ms for c in app]))} ms, the patient applied it after "
        f"{_ms(_median([c.patient_offer_ms for c in app]))} ms, the doctor applied the answer after "
        f"{_ms(_median([c.doctor_answer_ms for c in app]))} ms; the doctor's page connected after "
        f"{_ms(_median([c.doctor_ms for c in app]))} ms and the patient's after "
        f"{_ms(_median([c.patient_ms for c in app]))} ms. The polite patient offered too (a collision it "
        f"rolled back) in {sum(c.patient_offered for c in app)} of {len(app)} calls. Each call (ms, in order): "
        + ", ".join(_ms(c.both_ms) for c in app)
        + "; the floor's: "
        + ", ".join(_ms(value) for value in result.floor_ms)
        + ".",
        "",
        f"- Measured {result.measured_at} with {result.browser}; the machine's load average over the minute "
        f"before: {result.load_average:.2f}.",
    ]
    return "\n".join(lines)
