"""A scripted pre-call check client: an aiortc peer with aiortc's own test
media (a green video and silence) and the ``ping`` data channel the check
page opens, to talk to the server's echo peer (docs/precall-check.md)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

WAIT_S = 15.0


class EchoClient:
    def __init__(self, *, media: bool = True) -> None:
        # No ICE servers: host candidates only, nothing leaves the machine.
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        if media:
            self.pc.addTrack(AudioStreamTrack())
            self.pc.addTrack(VideoStreamTrack())
        self.channel = self.pc.createDataChannel("ping", ordered=False, maxRetransmits=0)
        self.opened = asyncio.Event()
        self.closed = asyncio.Event()
        self.pongs: asyncio.Queue[tuple[str | bytes, float]] = asyncio.Queue()
        self.received: dict[str, list[Any]] = {"audio": [], "video": []}
        self._readers: list[asyncio.Task[None]] = []
        self.channel.on("open", self.opened.set)
        self.channel.on("close", self.closed.set)
        self.channel.on("message", lambda message: self.pongs.put_nowait((message, time.monotonic())))
        self.pc.on("track", self._on_track)

    def _on_track(self, track: Any) -> None:
        async def read() -> None:
            while True:
                frame = await track.recv()
                self.received[track.kind].append(frame)

        self._readers.append(asyncio.ensure_future(read()))

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        sdp: str = self.pc.localDescription.sdp
        return sdp

    async def accept(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
        await asyncio.wait_for(self.opened.wait(), WAIT_S)

    async def ping(self, payload: str | bytes) -> tuple[str | bytes, float]:
        """The echo of ``payload`` and the round trip in ms."""
        sent_at = time.monotonic()
        self.channel.send(payload)
        echo, received_at = await asyncio.wait_for(self.pongs.get(), WAIT_S)
        return echo, (received_at - sent_at) * 1000

    async def frames(self, kind: str, count: int) -> int:
        """Wait until ``count`` frames of ``kind`` came back; how many did."""
        deadline = time.monotonic() + WAIT_S
        while len(self.received[kind]) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        return len(self.received[kind])

    async def server_closed(self) -> bool:
        """Whether the server closed the connection within WAIT_S."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if self.closed.is_set() or self.pc.connectionState in {"closed", "failed", "disconnected"}:
                return True
            await asyncio.sleep(0.1)
        return False

    def done(self) -> None:
        self.channel.send("done")

    async def close(self) -> None:
        for reader in self._readers:
            reader.cancel()
        await self.pc.close()
