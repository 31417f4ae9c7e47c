"""The pre-call check's server side: the echo peer the browser tests its
network against, and the rule that turns what it measured into a plain
recommendation (video, audio only or chat only).

The echo peer is an aiortc ``RTCPeerConnection`` living on the ASGI
server's event loop (the offer view is an async view): it sends the
browser's audio and video back (through a ``MediaRelay``), and sends every
data-channel message back unchanged (pings for the round-trip time, the
throughput probe). It closes itself after CONSULT_CHECK_DURATION_S, when
the browser sends ``done``, or when its connection fails. A process holds
at most CONSULT_CHECK_MAX_SESSIONS of them, one per user (a user's new
check replaces their old one). docs/precall-check.md describes the whole
check.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from apps.consults.models import Consult, ConsultState, MediaMode
from apps.scheduling.models import Appointment, AppointmentStatus
from apps.scheduling.services import Refusal

logger = logging.getLogger(__name__)

# --- The recommendation ----------------------------------------------------------------
# Video needs room for the room's video (640x360 at 15 fps, capped at
# CONSULT_VIDEO_MAX_KBPS, 300 by default, and still watchable from about
# 200 kbps) plus Opus audio: 250 kbps that came back through the echo.
# Above about 5 % loss video freezes and smears even with retransmissions,
# and above about 500 ms round trip each lost key frame takes long to repair.
VIDEO_MIN_KBPS = 250
VIDEO_MAX_LOSS_PCT = 5.0
VIDEO_MAX_RTT_MS = 500
# Opus speech with in-band FEC stays understandable from about 16 kbps and
# up to 10-15 % loss; 40 kbps leaves room for packet overhead and the
# signaling beside it. Beyond about 1 s round trip (0.5 s each way, twice
# ITU-T G.114's limit for conversation) people talk over each other.
AUDIO_MIN_KBPS = 40
AUDIO_MAX_LOSS_PCT = 15.0
AUDIO_MAX_RTT_MS = 1000


class CheckReason:
    """Why the recommendation is what it is (the explanation shown)."""

    GOOD = "good"
    NO_CONNECTION = "no_connection"
    NO_MICROPHONE = "no_microphone"
    WEAK_FOR_AUDIO = "weak_for_audio"
    NO_CAMERA = "no_camera"
    WEAK_FOR_VIDEO = "weak_for_video"


EXPLANATIONS: dict[str, Promise] = {
    CheckReason.GOOD: _("Your connection is good enough for a video consult."),
    CheckReason.NO_CONNECTION: _(
        "The network test could not reach our server. You can still write to the doctor in the chat. "
        "Try again from a place with a better signal."
    ),
    CheckReason.NO_MICROPHONE: _(
        "Your microphone is not available, so the doctor would not hear you. "
        "Use the chat, or allow the microphone and test again."
    ),
    CheckReason.WEAK_FOR_AUDIO: _(
        "Your connection is too weak for a voice call. Write to the doctor in the chat. "
        "Try again from a place with a better signal."
    ),
    CheckReason.NO_CAMERA: _(
        "Your camera is not available, so the consult will be by voice. The chat works too. "
        "Allow the camera and test again for video."
    ),
    CheckReason.WEAK_FOR_VIDEO: _(
        "Your connection is too weak for video. Talk with the doctor by voice; the chat works too."
    ),
}

LABELS: dict[str, Promise] = {
    MediaMode.VIDEO: _("Video"),
    MediaMode.AUDIO: _("Audio only"),
    MediaMode.CHAT: _("Chat only"),
}


@dataclass(frozen=True)
class CheckAssessment:
    recommendation: str  # a MediaMode value
    reason: str  # a CheckReason value

    @property
    def label(self) -> str:
        return str(LABELS[self.recommendation])

    @property
    def explanation(self) -> str:
        return str(EXPLANATIONS[self.reason])


def check_assess(
    *,
    rtt_ms: float | None,
    loss_pct: float | None,
    bitrate_kbps: float | None,
    camera_ok: bool,
    microphone_ok: bool,
) -> CheckAssessment:
    """The recommendation for measured values (None: not measured) and its
    reason. Video when the camera works and VIDEO_MIN_KBPS came back with
    less than VIDEO_MAX_LOSS_PCT loss and less than VIDEO_MAX_RTT_MS round
    trip; audio on the same terms with the AUDIO_ limits when the microphone
    works; chat otherwise (it goes over the page's own connection). A value
    not measured never counts as good."""
    if rtt_ms is None:
        return CheckAssessment(MediaMode.CHAT, CheckReason.NO_CONNECTION)
    if not microphone_ok:
        return CheckAssessment(MediaMode.CHAT, CheckReason.NO_MICROPHONE)
    if not _within(rtt_ms, loss_pct, bitrate_kbps, AUDIO_MAX_RTT_MS, AUDIO_MAX_LOSS_PCT, AUDIO_MIN_KBPS):
        return CheckAssessment(MediaMode.CHAT, CheckReason.WEAK_FOR_AUDIO)
    if not camera_ok:
        return CheckAssessment(MediaMode.AUDIO, CheckReason.NO_CAMERA)
    if not _within(rtt_ms, loss_pct, bitrate_kbps, VIDEO_MAX_RTT_MS, VIDEO_MAX_LOSS_PCT, VIDEO_MIN_KBPS):
        return CheckAssessment(MediaMode.AUDIO, CheckReason.WEAK_FOR_VIDEO)
    return CheckAssessment(MediaMode.VIDEO, CheckReason.GOOD)


def _within(
    rtt_ms: float,
    loss_pct: float | None,
    bitrate_kbps: float | None,
    max_rtt_ms: float,
    max_loss_pct: float,
    min_kbps: float,
) -> bool:
    return (
        rtt_ms < max_rtt_ms
        and loss_pct is not None
        and loss_pct < max_loss_pct
        and bitrate_kbps is not None
        and bitrate_kbps >= min_kbps
    )


def check_recommendation(
    *,
    rtt_ms: float | None,
    loss_pct: float | None,
    bitrate_kbps: float | None,
    camera_ok: bool,
    microphone_ok: bool,
) -> str:
    """video, audio or chat (MediaMode values): see ``check_assess``."""
    return check_assess(
        rtt_ms=rtt_ms,
        loss_pct=loss_pct,
        bitrate_kbps=bitrate_kbps,
        camera_ok=camera_ok,
        microphone_ok=microphone_ok,
    ).recommendation


# --- Refusals and input ----------------------------------------------------------------
# The largest offer accepted: a browser's offer with audio, video and a data
# channel and all its candidates is 4-10 KB.
OFFER_MAX_BYTES = 32 * 1024
RESULT_MAX_BYTES = 4 * 1024
# Audio, video and one data-channel section: nothing else is echoed.
_OFFER_MEDIA = {"audio", "video", "application"}
_OFFER_MAX_SECTIONS = 3
_MEDIA_LINE = re.compile(r"^m=(\S+) ", re.MULTILINE)
# How long the echo peer may take to answer (gathering its candidates,
# allocating on the TURN server) before the offer is refused.
ANSWER_TIMEOUT_S = 10.0


class CheckError(Refusal):
    MESSAGES: dict[str, Promise] = {
        "busy": _("The network test is busy right now. Please try again in a minute."),
        "bad_offer": _("The network test could not start: your browser sent something we could not read."),
        "offer_too_large": _("The network test could not start: your browser sent too much data."),
        "unavailable": _("The network test could not start. Please try again in a minute."),
        "bad_result": _("The test result is not valid. Please run the test again."),
        "ended": _("This consult has ended: there is nothing to test for."),
        "not_booked": _("This appointment is no longer booked: there is nothing to test for."),
    }


def check_refusal(appointment: Appointment) -> str | None:
    """Why a check of this (video, participant-visible) appointment is
    refused, or None: its consult has ended or it is no longer booked. A
    check is allowed any time before the consult, not only while the room is
    open: a patient may test the day before."""
    state = Consult.objects.filter(appointment=appointment).values_list("state", flat=True).first()
    if state == ConsultState.ENDED:
        return "ended"
    if appointment.status != AppointmentStatus.BOOKED:
        return "not_booked"
    return None


def offer_sdp_clean(body: bytes) -> str:
    """The offer's SDP from the request body ``{"type": "offer", "sdp": ...}``,
    or CheckError. Only a first look: aiortc parses it fully."""
    if len(body) > OFFER_MAX_BYTES:
        raise CheckError("offer_too_large")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise CheckError("bad_offer") from None
    if not isinstance(data, dict) or data.get("type") != "offer" or not isinstance(data.get("sdp"), str):
        raise CheckError("bad_offer")
    sdp: str = data["sdp"]
    if not sdp.startswith("v=0"):
        raise CheckError("bad_offer")
    kinds = _MEDIA_LINE.findall(sdp)
    if not kinds or len(kinds) > _OFFER_MAX_SECTIONS or not set(kinds) <= _OFFER_MEDIA or "application" not in kinds:
        raise CheckError("bad_offer")
    return sdp


@dataclass(frozen=True)
class CheckMeasurements:
    rtt_ms: float | None
    loss_pct: float | None
    bitrate_kbps: float | None
    relay_ok: bool | None
    camera_ok: bool
    microphone_ok: bool

    def assess(self) -> CheckAssessment:
        return check_assess(
            rtt_ms=self.rtt_ms,
            loss_pct=self.loss_pct,
            bitrate_kbps=self.bitrate_kbps,
            camera_ok=self.camera_ok,
            microphone_ok=self.microphone_ok,
        )


_NUMBER_MAXIMA = {"rtt_ms": 60_000, "loss_pct": 100, "bitrate_kbps": 1_000_000}
_FLAGS = {"camera_ok", "microphone_ok"}


def check_measurements_clean(data: object) -> CheckMeasurements:
    """What the browser measured, checked: ``rtt_ms``, ``loss_pct``,
    ``bitrate_kbps`` (finite numbers in range, or null: not measured),
    ``relay_ok`` (true, false or null: not tested), ``camera_ok`` and
    ``microphone_ok`` (true or false). Anything else: CheckError."""
    if not isinstance(data, Mapping) or not set(data) <= {*_NUMBER_MAXIMA, *_FLAGS, "relay_ok"}:
        raise CheckError("bad_result")
    numbers: dict[str, float | None] = {}
    for name, maximum in _NUMBER_MAXIMA.items():
        value = data.get(name)
        if value is None:
            numbers[name] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= maximum:
            raise CheckError("bad_result")  # NaN and infinities fail the range too
        numbers[name] = round(float(value), 1)
    flags: dict[str, bool] = {}
    for name in _FLAGS:
        if not isinstance(data.get(name), bool):
            raise CheckError("bad_result")
        flags[name] = data[name]
    relay_ok = data.get("relay_ok")
    if relay_ok is not None and not isinstance(relay_ok, bool):
        raise CheckError("bad_result")
    return CheckMeasurements(
        rtt_ms=numbers["rtt_ms"],
        loss_pct=numbers["loss_pct"],
        bitrate_kbps=numbers["bitrate_kbps"],
        relay_ok=relay_ok,
        camera_ok=flags["camera_ok"],
        microphone_ok=flags["microphone_ok"],
    )


# --- The echo peer ---------------------------------------------------------------------
DONE_MESSAGE = "done"


class EchoSession:
    """One browser's echo peer. Made and closed by ``EchoPeers``."""

    def __init__(self, *, peers: EchoPeers, user_id: int) -> None:
        from aiortc.contrib.media import MediaRelay

        self.peers = peers
        self.user_id = user_id
        self.pc: Any = None
        self.relay = MediaRelay()
        self.closed = False
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coroutine: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def answer(self, *, offer_sdp: str, ice_servers: list[dict[str, Any]], duration_s: float) -> str:
        from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription

        servers = [
            RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
            for s in ice_servers
        ]
        # An explicit list, even empty: with none aiortc would ask a STUN server on the internet.
        self.pc = pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))

        @pc.on("track")
        def on_track(track: Any) -> None:
            # Unbuffered: when encoding falls behind, old frames are dropped, not queued.
            pc.addTrack(self.relay.subscribe(track, buffered=False))

        @pc.on("datachannel")
        def on_datachannel(channel: Any) -> None:
            @channel.on("message")
            def on_message(message: str | bytes) -> None:
                if message == DONE_MESSAGE:
                    self.spawn(self.close())
                elif channel.readyState == "open":
                    channel.send(message)

        @pc.on("connectionstatechange")
        async def on_connectionstatechange() -> None:
            if pc.connectionState == "failed":
                await self.close()

        self.spawn(self._expire(duration_s))
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        except Exception:  # aiortc raises ValueError, KeyError, IndexError... on bad SDP
            logger.info("pre-call check: an offer aiortc could not use")
            raise CheckError("bad_offer") from None
        try:
            answer = await pc.createAnswer()
            await asyncio.wait_for(pc.setLocalDescription(answer), timeout=ANSWER_TIMEOUT_S)
        except TimeoutError:
            logger.warning("pre-call check: no answer within %s s (ICE gathering)", ANSWER_TIMEOUT_S)
            raise CheckError("unavailable") from None
        except Exception:  # the offer was readable but not usable (no common codec, ...)
            logger.info("pre-call check: an offer aiortc could not answer")
            raise CheckError("bad_offer") from None
        sdp: str = pc.localDescription.sdp
        return sdp

    async def _expire(self, duration_s: float) -> None:
        await asyncio.sleep(duration_s)
        await self.close()

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.peers.forget(self)
        if self.pc is not None:
            with contextlib.suppress(Exception):  # closing must not fail; a half-made peer may raise
                await self.pc.close()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()


class EchoPeers:
    """The echo sessions of this process: at most ``max_sessions``, one per user."""

    def __init__(self) -> None:
        self.sessions: dict[int, EchoSession] = {}

    def forget(self, session: EchoSession) -> None:
        if self.sessions.get(session.user_id) is session:
            del self.sessions[session.user_id]

    async def answer(
        self,
        *,
        user_id: int,
        offer_sdp: str,
        ice_servers: list[dict[str, Any]],
        duration_s: float | None = None,
        max_sessions: int | None = None,
    ) -> str:
        """Start an echo session for ``user_id`` and return its answer SDP;
        CheckError("busy") when the process already runs its maximum."""
        duration_s = settings.CONSULT_CHECK_DURATION_S if duration_s is None else duration_s
        max_sessions = settings.CONSULT_CHECK_MAX_SESSIONS if max_sessions is None else max_sessions
        previous = self.sessions.get(user_id)
        if previous is not None:
            await previous.close()
        # No await between the count and taking the place: one event loop, so no race.
        if len(self.sessions) >= max_sessions:
            raise CheckError("busy")
        session = EchoSession(peers=self, user_id=user_id)
        self.sessions[user_id] = session
        try:
            return await session.answer(offer_sdp=offer_sdp, ice_servers=ice_servers, duration_s=duration_s)
        except BaseException:
            await session.close()
            raise

    async def close_all(self) -> None:
        for session in list(self.sessions.values()):
            await session.close()


echo_peers = EchoPeers()
