"""A consult participant written in Python with aiortc: the scripted peer
that shows the signaling protocol (docs/consult-protocol.md) is not tied to
the room page. It joins over a real WebSocket with the session cookie and
Origin a browser would send, and speaks only the documented messages.

It plays the **polite** side of perfect negotiation and never offers: the
impolite doctor offers as soon as both are in a started consult (and after
any ``peer joined``), so a polite side that only answers never collides.
aiortc puts all its candidates in the SDP, so its trickle is the answer
followed by ``candidate: null``; the other side's trickled candidates are
queued until the offer has been applied. aiortc can't restart ICE: an offer
with new ICE credentials (the doctor's ``restartIce()``) or one that doesn't
fit the current connection is answered from a new peer connection, as the
protocol says.

Media: a test pattern (a flat image whose brightness changes every frame,
320x240 at 15 fps) and aiortc's silent audio; every decoded frame of the
other side is counted by kind. ``quality`` is reported every few seconds
from aiortc's getStats, as the protocol asks of every client.

``PeerThread`` runs a peer on its own event loop in a background thread, so
that a test driving Playwright's sync API in the main thread can watch it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceCandidate,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError
from aiortc.sdp import candidate_from_sdp

from tests.consults.websocket_client import WebSocket, WebSocketClosed

VIDEO_CLOCK_RATE = 90_000
QUALITY_EVERY_S = 3.0


class TestPatternVideoTrack(MediaStreamTrack):
    """A small moving picture: each frame one shade brighter than the last."""

    kind = "video"

    def __init__(self, *, width: int = 320, height: int = 240, fps: int = 15) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self.count = 0
        self.started_at: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self.started_at is None:
            self.started_at = time.monotonic()
        else:
            await asyncio.sleep(max(0.0, self.started_at + self.count / self.fps - time.monotonic()))
        frame = av.VideoFrame(width=self.width, height=self.height, format="yuv420p")
        luma, *chroma = frame.planes
        luma.update(bytes([16 + (self.count * 3) % 220]) * luma.buffer_size)
        for plane in chroma:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts = self.count * (VIDEO_CLOCK_RATE // self.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK_RATE)
        self.count += 1
        return frame


def ice_servers_from(welcome: dict[str, Any]) -> list[RTCIceServer]:
    """The ``welcome``'s ``ice_servers`` as aiortc's: an empty list means no
    STUN at all (aiortc's own default would ask one on the internet)."""
    return [
        RTCIceServer(urls=server["urls"], username=server.get("username"), credential=server.get("credential"))
        for server in welcome.get("ice_servers", [])
    ]


def candidate_from_init(init: dict[str, Any]) -> RTCIceCandidate | None:
    """An RTCIceCandidateInit from the browser as aiortc's candidate; None
    for the end of the candidates (an empty ``candidate`` string)."""
    text = init.get("candidate") or ""
    if not text:
        return None
    candidate = candidate_from_sdp(text.split(":", 1)[1] if text.startswith("candidate:") else text)
    candidate.sdpMid = init.get("sdpMid")
    candidate.sdpMLineIndex = init.get("sdpMLineIndex")
    return candidate


def ice_ufrags(sdp: str) -> set[str]:
    return {line.split(":", 1)[1].strip() for line in sdp.splitlines() if line.startswith("a=ice-ufrag:")}


class ScriptedPeer:
    """One participant's socket and peer connection. Its attributes are
    plain values a test in another thread may read while it runs."""

    def __init__(self, *, server: str, appointment_id: int, cookie: str) -> None:
        self.url = server.replace("http://", "ws://") + f"/ws/consults/{appointment_id}/"
        self.headers = {"Origin": server, "Cookie": f"sessionid={cookie}"}
        self.websocket: WebSocket | None = None
        self.pc: RTCPeerConnection | None = None
        self.peer_connections = 0
        self.pending_candidates: list[dict[str, Any] | None] = []
        self.tasks: set[asyncio.Task[None]] = set()
        # What a test watches.
        self.welcome: dict[str, Any] = {}
        self.role = ""
        self.consult_state = ""
        self.other_present = False
        self.connection_state = "new"
        self.frames_received = {"audio": 0, "video": 0}
        self.chat: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.offers_answered = 0
        self.quality_reports = 0
        self.ended: dict[str, Any] | None = None
        self.close_code: int | None = None
        self.failure: BaseException | None = None

    # --- The socket --------------------------------------------------------------------

    async def run(self) -> None:
        """Join, then handle every message in order until the socket closes."""
        self.websocket = await WebSocket.connect(self.url, headers=self.headers)
        try:
            while True:
                try:
                    message = json.loads(await self.websocket.receive_text())
                except WebSocketClosed as closed:
                    self.close_code = closed.code
                    return
                handler = getattr(self, f"on_{message.get('type')}", None)
                if handler is not None:
                    await handler(message)
        finally:
            await self.close_peer()
            for task in list(self.tasks):
                task.cancel()

    async def send(self, message: dict[str, Any]) -> None:
        assert self.websocket is not None
        await self.websocket.send_text(json.dumps(message))

    async def leave(self) -> None:
        if self.websocket is not None:
            await self.websocket.close()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # --- From the server ---------------------------------------------------------------

    def call_should_run(self) -> bool:
        return self.consult_state == "in_progress" and self.other_present and self.ended is None

    async def on_welcome(self, message: dict[str, Any]) -> None:
        self.welcome = message
        self.role = message["you"]["role"]
        self.consult_state = message["consult"]["state"]
        self.other_present = any(p["role"] != self.role for p in message["present"])
        self.chat.extend(message["chat"])
        if self.call_should_run():
            await self.start_over()

    async def on_peer(self, message: dict[str, Any]) -> None:
        if message["role"] == self.role or message["event"] == "quality":
            return
        if message["event"] == "joined":
            # A fresh page (or socket) on the other side: a fresh connection too.
            self.other_present = True
            if self.call_should_run():
                await self.start_over()
        elif message["event"] == "left":
            self.other_present = False
            await self.close_peer()

    async def on_started(self, message: dict[str, Any]) -> None:
        self.consult_state = "in_progress"
        if self.call_should_run() and self.pc is None:
            await self.start_over()

    async def on_signal(self, message: dict[str, Any]) -> None:
        if not self.call_should_run():
            return
        if "description" in message:
            await self.on_description(message["description"])
        elif "candidate" in message:
            await self.on_candidate(message["candidate"])

    async def on_description(self, description: dict[str, Any]) -> None:
        if description["type"] != "offer":
            return  # this side never offers, so it never waits for an answer
        pc = self.pc or await self.start_over()
        remote = pc.remoteDescription
        if remote is not None and ice_ufrags(remote.sdp) != ice_ufrags(description["sdp"]):
            pc = await self.start_over()  # an ICE restart, which aiortc can't do in place
        offer = RTCSessionDescription(sdp=description["sdp"], type="offer")
        try:
            await pc.setRemoteDescription(offer)
        except (ValueError, RuntimeError):
            # An offer from a fresh page on the other side: answer it anew.
            pc = await self.start_over()
            await pc.setRemoteDescription(offer)
        for queued in self.pending_candidates:
            await pc.addIceCandidate(candidate_from_init(queued) if queued else None)
        self.pending_candidates = []
        await pc.setLocalDescription(await pc.createAnswer())
        await self.send({"type": "signal", "description": {"type": "answer", "sdp": pc.localDescription.sdp}})
        await self.send({"type": "signal", "candidate": None})  # every candidate is in the answer
        self.offers_answered += 1

    async def on_candidate(self, init: dict[str, Any] | None) -> None:
        if self.pc is None or self.pc.remoteDescription is None:
            self.pending_candidates.append(init)
            return
        await self.pc.addIceCandidate(candidate_from_init(init) if init else None)

    async def on_chat(self, message: dict[str, Any]) -> None:
        if all(seen.get("id") != message["id"] for seen in self.chat):
            self.chat.append(message)

    async def on_error(self, message: dict[str, Any]) -> None:
        self.errors.append(message)

    async def on_ended(self, message: dict[str, Any]) -> None:
        self.ended = message
        self.consult_state = "ended"
        await self.close_peer()

    # --- The peer connection -----------------------------------------------------------

    async def close_peer(self) -> None:
        pc, self.pc = self.pc, None
        self.pending_candidates = []
        if pc is not None:
            await pc.close()

    async def start_over(self) -> RTCPeerConnection:
        """A new peer connection with this side's tracks (the old one closed)."""
        await self.close_peer()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers_from(self.welcome)))
        self.pc = pc
        self.peer_connections += 1
        self.connection_state = pc.connectionState

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc is self.pc:
                self.connection_state = pc.connectionState

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._spawn(self.count_frames(track))

        pc.addTrack(AudioStreamTrack())
        pc.addTrack(TestPatternVideoTrack())
        self._spawn(self.report_quality(pc))
        return pc

    async def count_frames(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                self.frames_received[track.kind] += 1

    async def report_quality(self, pc: RTCPeerConnection) -> None:
        """``quality`` every few seconds while this connection is the one in use."""
        previous: tuple[float, int] | None = None
        while pc is self.pc:
            await asyncio.sleep(QUALITY_EVERY_S)
            if pc is not self.pc or pc.connectionState != "connected":
                continue
            rtt_ms = loss_pct = None
            sent_bytes = 0
            for stats in (await pc.getStats()).values():
                if stats.type == "outbound-rtp":
                    sent_bytes += stats.bytesSent
                elif stats.type == "remote-inbound-rtp" and stats.kind == "video":
                    rtt_ms = round(stats.roundTripTime * 1000, 1)
                    loss_pct = round(stats.fractionLost * 100, 1)
            now = time.monotonic()
            bitrate_kbps = None
            if previous is not None and now > previous[0]:
                bitrate_kbps = round((sent_bytes - previous[1]) * 8 / (now - previous[0]) / 1000, 1)
            previous = (now, sent_bytes)
            quality = {"rtt_ms": rtt_ms, "loss_pct": loss_pct, "bitrate_kbps": bitrate_kbps}
            await self.send({"type": "quality", "quality": quality})
            self.quality_reports += 1


class PeerThread:
    """A ``ScriptedPeer`` on its own event loop in a daemon thread."""

    def __init__(self, peer: ScriptedPeer) -> None:
        self.peer = peer
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._main, name="aiortc-peer", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.peer.run())
        except BaseException as error:  # reported to the test, which fails on it
            self.peer.failure = error
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def call(self, coroutine: Any, *, timeout_s: float = 10.0) -> Any:
        """Run ``coroutine`` on the peer's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=timeout_s)

    def send(self, message: dict[str, Any]) -> None:
        self.call(self.peer.send(message))

    def wait_until(self, condition: Callable[[ScriptedPeer], bool], *, timeout_s: float = 20.0) -> bool:
        """Whether ``condition(peer)`` became true in time (False also when the peer failed)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition(self.peer):
                return True
            if self.peer.failure is not None or not self.thread.is_alive():
                return condition(self.peer)
            time.sleep(0.1)
        return False


@contextmanager
def scripted_peer(*, server: str, appointment_id: int, cookie: str) -> Iterator[PeerThread]:
    """A running scripted peer in the room; it leaves (and its thread ends) on the way out."""
    runner = PeerThread(ScriptedPeer(server=server, appointment_id=appointment_id, cookie=cookie))
    runner.thread.start()
    try:
        yield runner
    finally:
        if runner.thread.is_alive() and not runner.loop.is_closed():
            with contextlib.suppress(Exception):
                runner.call(runner.peer.leave(), timeout_s=5)
        runner.thread.join(timeout=15)
