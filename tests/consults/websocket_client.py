"""A small WebSocket client (RFC 6455) on asyncio streams, for tests that
talk to a real server over TCP the way a non-browser client would: with the
session cookie and an Origin header.

The project has no WebSocket client library, and autobahn's asyncio flavour
can't be loaded next to Daphne (which pins txaio to Twisted). Text frames,
fragmented messages, ping/pong and close are enough for the consult protocol."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import struct
from urllib.parse import urlsplit

ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


class WebSocketClosed(Exception):
    def __init__(self, code: int | None) -> None:
        super().__init__(f"closed with {code}")
        self.code = code


class WebSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.close_code: int | None = None

    @classmethod
    async def connect(cls, url: str, *, headers: dict[str, str]) -> WebSocket:
        """Open ``ws://host:port/path`` with these extra request headers; the
        server must answer 101 with the matching Sec-WebSocket-Accept."""
        parts = urlsplit(url)
        assert parts.scheme == "ws" and parts.hostname and parts.port, url
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        lines = [
            f"GET {parts.path}{'?' + parts.query if parts.query else ''} HTTP/1.1",
            f"Host: {parts.hostname}:{parts.port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = head[0].split(" ")
        assert status[1] == "101", head[0]
        fields = {name.strip().lower(): value.strip() for name, value in (h.split(":", 1) for h in head[1:] if h)}
        digest = hashlib.sha1(key.encode("ascii") + ACCEPT_GUID, usedforsecurity=False).digest()
        expected = base64.b64encode(digest).decode("ascii")
        assert fields.get("sec-websocket-accept") == expected, fields
        return cls(reader, writer)

    async def _send_frame(self, opcode: int, payload: bytes) -> None:
        """One final frame, masked as a client must."""
        header = bytes([0x80 | opcode])
        length = len(payload)
        if length < 126:
            header += bytes([0x80 | length])
        elif length < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack("!H", length)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", length)
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        self.writer.write(header + mask + masked)
        await self.writer.drain()

    async def send_text(self, text: str) -> None:
        await self._send_frame(TEXT, text.encode("utf-8"))

    async def _read_frame(self) -> tuple[bool, int, bytes]:
        first, second = await self.reader.readexactly(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        mask = await self.reader.readexactly(4) if second & 0x80 else b""
        payload = await self.reader.readexactly(length)
        if mask:
            payload = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        return bool(first & 0x80), first & 0x0F, payload

    async def receive_text(self) -> str:
        """The next text message; answers pings on the way. Raises
        ``WebSocketClosed`` when the server closes."""
        parts: list[bytes] = []
        while True:
            try:
                final, opcode, payload = await self._read_frame()
            except asyncio.IncompleteReadError:
                raise WebSocketClosed(self.close_code) from None
            if opcode == PING:
                await self._send_frame(PONG, payload)
            elif opcode == CLOSE:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                await self.close(self.close_code or 1000)
                raise WebSocketClosed(self.close_code)
            elif opcode in (TEXT, BINARY, CONTINUATION):
                parts.append(payload)
                if final:
                    return b"".join(parts).decode("utf-8")

    async def close(self, code: int = 1000) -> None:
        if not self.writer.is_closing():
            with contextlib.suppress(ConnectionError):
                await self._send_frame(CLOSE, struct.pack("!H", code))
            self.writer.close()
        await self.writer.wait_closed()
