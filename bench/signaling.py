"""Consult signaling under load: ROOMS consults (two WebSocket clients each)
exchange a call's signaling and chat through Daphne, in three set-ups: one
Daphne process on the in-memory channel layer (the embedded mode's layer);
one, then two on channels-redis with the product's settings (two: every
room's patient on one process and its doctor on the other).

Set-up, not timed: a fresh PostgreSQL database (``telemed_bench_<pid>``,
migrated, dropped afterwards) — chat is stored, so PostgreSQL is needed —
and the benchmark's Redis database (flushed before and after);
``python -m bench.signaling_child seed`` creates, for each set-up, ROOMS + 1
doctors, patients and video appointments whose rooms are open now, with a
signed-in session each (made in the session store, as a sign-in would).

Each set-up: Daphne starts (``telemed.asgi:application``, with the set-up's
settings module); one warm-up room runs the whole exchange, so that code is loaded
and connections are open; the servers' resident memory (``VmRSS`` of
``/proc/<pid>/status``) is read; every patient connects, then every doctor
(at most CONNECT_CONCURRENCY handshakes at a time; a connection counts once
its ``welcome`` came); memory is read again: the difference over the
connections a process holds is its memory per connection. Then each room,
starting at a random moment of the first ``start_spread_s`` seconds: the
doctor sends ``start``; once both have ``started``, the doctor sends an
offer (a browser-like SDP of about 5 KB) and trickles ``candidates``
candidates ``candidate_gap_s`` apart and ``null``; the patient answers
(about 2.8 KB) on the offer and trickles as many; then ``chat_rounds``
times the patient writes and the doctor answers on receipt. Every message
carries its send time (``perf_counter_ns``; the clients are one asyncio
process) in its payload — an ``a=x-bench-sent:`` line of the SDP, an
``x-bench-sent`` extension of the candidate, a tag in the chat text — and
the other side's client takes the time when it has read and decoded the
frame: the relay latency, which includes the server's work (a chat is
stored before it is sent) and the clients' own scheduling. Errors: any
``error`` message, a socket closed by the server, a message not received
within EXPECT_TIMEOUT_S, a failed handshake; afterwards the stored chat
messages are counted against those sent.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis

from bench.http_load import percentile_ms
from bench.notifications import REDIS_URL, bench_database, bench_redis
from bench.server import (
    LOG_TAIL_CHARS,
    PROJECT_DIR,
    RunningDaphne,
    daphne_process,
    embedded_environment,
    manage_py_run,
    outcome_measure,
    process_cpu_seconds,
)
from bench.slots import postgres_missing, utc_now_text
from tests.consults.websocket_client import WebSocket, WebSocketClosed

SIGNALING_HEADING = "## Consult signaling (WebSocket relay)"
CONNECT_CONCURRENCY = 20
EXPECT_TIMEOUT_S = 60.0
SEED_TIMEOUT_S = 600
SETTLE_S = 1.5  # after connecting (or leaving), before memory is read
SERVICE_TIMEOUT_S = 3.0
SENT_PATTERN = re.compile(r"x-bench-sent[: ](\d+)")
KINDS = ("description", "candidate", "chat")


@dataclass(frozen=True)
class SignalingPlan:
    rooms: int
    candidates: int = 10  # each way, then null
    chat_rounds: int = 3  # the patient writes, the doctor answers
    start_spread_s: float = 60.0
    candidate_gap_s: float = 0.02


FULL_SIGNALING = SignalingPlan(rooms=200)
SMOKE_SIGNALING = SignalingPlan(rooms=10, candidates=3, chat_rounds=1, start_spread_s=1.0)


@dataclass(frozen=True)
class SetUp:
    label: str
    processes: int
    redis: bool
    settings_module: str = "telemed.settings"


SET_UPS = (
    SetUp("1 Daphne process, in-memory channel layer", processes=1, redis=False),
    SetUp("1 Daphne process, channels-redis", processes=1, redis=True),
    SetUp("2 Daphne processes, channels-redis (patient on one, doctor on the other)", processes=2, redis=True),
)


@dataclass(frozen=True)
class Relay:
    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float


def relay_of(samples_s: list[float]) -> Relay:
    return Relay(
        count=len(samples_s),
        p50_ms=percentile_ms(samples_s, 50),
        p99_ms=percentile_ms(samples_s, 99),
        max_ms=max(samples_s) * 1000 if samples_s else math.nan,
    )


@dataclass
class SetUpResult:
    set_up: SetUp
    rooms: int
    skipped: str | None = None
    connected: int = 0
    connect: Relay | None = None  # handshake to welcome
    relay: dict[str, Relay] = field(default_factory=dict)  # by kind, and "all"
    expected: int = 0  # messages the other side should receive
    delivered: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    connections_per_process: list[int] = field(default_factory=list)
    rss_before_kib: list[int | None] = field(default_factory=list)
    rss_connected_kib: list[int | None] = field(default_factory=list)
    rss_after_kib: list[int | None] = field(default_factory=list)
    exchange_s: float = math.nan
    server_cpu_s: list[float | None] = field(default_factory=list)
    client_cpu_s: float = math.nan
    chat_sent: int = 0
    chat_stored: int | None = None
    # From the servers' logs: channel-layer messages channels-redis dropped
    # because a process's inbox was over capacity, and exceptions that
    # closed a socket (1011).
    dropped_over_capacity: int = 0
    server_exceptions: int = 0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def kib_per_connection(self) -> list[float]:
        return [
            (after - before) / count if before is not None and after is not None and count else math.nan
            for before, after, count in zip(
                self.rss_before_kib, self.rss_connected_kib, self.connections_per_process, strict=True
            )
        ]

    @property
    def server_cpu_ms_per_message(self) -> float:
        """Daphne's CPU time (all processes) per message relayed to the other side."""
        cpu = [value for value in self.server_cpu_s if value is not None]
        return 1000 * sum(cpu) / self.delivered if cpu and self.delivered else math.nan

    @property
    def messages_per_s(self) -> float:
        return self.delivered / self.exchange_s if self.exchange_s > 0 else math.nan

    @property
    def passed(self) -> bool:
        return self.skipped is not None or (
            self.error_count == 0
            and self.connected == 2 * self.rooms
            and self.delivered == self.expected
            and self.chat_stored == self.chat_sent
        )


@dataclass
class SignalingResult:
    plan: SignalingPlan
    skipped: str | None = None
    error: str | None = None
    measured_at: str = field(default_factory=utc_now_text)
    set_ups: list[SetUpResult] = field(default_factory=list)
    offer_bytes: int = 0
    answer_bytes: int = 0
    setup_s: float = math.nan
    load_average: float | None = None

    @property
    def measured(self) -> bool:
        return self.skipped is None

    @property
    def passed(self) -> bool:
        return self.skipped is None and self.error is None and all(s.passed for s in self.set_ups)


# --- Messages ---------------------------------------------------------------------

_AUDIO_CODECS = (
    (111, "opus/48000/2", "minptime=10;useinbandfec=1"),
    (63, "red/48000/2", "111/111"),
    (9, "G722/8000", None),
    (0, "PCMU/8000", None),
    (8, "PCMA/8000", None),
    (13, "CN/8000", None),
    (110, "telephone-event/48000", None),
    (126, "telephone-event/8000", None),
)
_H264 = "level-asymmetry-allowed=1;packetization-mode={mode};profile-level-id={profile}"
_VIDEO_CODECS = (
    (96, "VP8/90000", None),
    (98, "VP9/90000", "profile-id=0"),
    (100, "VP9/90000", "profile-id=2"),
    (102, "H264/90000", _H264.format(mode=1, profile="42001f")),
    (104, "H264/90000", _H264.format(mode=0, profile="42001f")),
    (106, "H264/90000", _H264.format(mode=1, profile="42e01f")),
    (108, "H264/90000", _H264.format(mode=0, profile="42e01f")),
    (112, "H264/90000", _H264.format(mode=1, profile="4d001f")),
    (114, "H264/90000", _H264.format(mode=1, profile="64001f")),
    (45, "AV1/90000", "level-idx=5;profile=0;tier=0"),
)
_AUDIO_EXTENSIONS = (
    "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    "urn:ietf:params:rtp-hdrext:sdes:mid",
)
_VIDEO_EXTENSIONS = (
    "urn:ietf:params:rtp-hdrext:toffset",
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "urn:3gpp:video-orientation",
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
    "http://www.webrtc.org/experiments/rtp-hdrext/video-content-type",
    "http://www.webrtc.org/experiments/rtp-hdrext/video-timing",
    "http://www.webrtc.org/experiments/rtp-hdrext/color-space",
    "urn:ietf:params:rtp-hdrext:sdes:mid",
    "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
    "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
)
_FINGERPRINT = ":".join(f"{(n * 37) % 256:02X}" for n in range(32))


def _media_section(
    *, kind: str, mid: int, codecs: tuple[tuple[int, str, str | None], ...], extensions: tuple[str, ...], room: int
) -> list[str]:
    payloads: list[str] = []
    lines: list[str] = []
    for payload, name, parameters in codecs:
        payloads.append(str(payload))
        lines.append(f"a=rtpmap:{payload} {name}")
        if kind == "video":
            lines += [
                f"a=rtcp-fb:{payload} {fb}" for fb in ("goog-remb", "transport-cc", "ccm fir", "nack", "nack pli")
            ]
        elif payload == 111:
            lines.append(f"a=rtcp-fb:{payload} transport-cc")
        if parameters:
            lines.append(f"a=fmtp:{payload} {parameters}")
        if kind == "video":
            payloads.append(str(payload + 1))
            lines += [f"a=rtpmap:{payload + 1} rtx/90000", f"a=fmtp:{payload + 1} apt={payload}"]
    ssrc = 1_000_000 + room * 10 + mid
    return [
        f"m={kind} 9 UDP/TLS/RTP/SAVPF {' '.join(payloads)}",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        f"a=ice-ufrag:r{room:04d}",
        "a=ice-pwd:benchbenchbenchbenchbench",
        "a=ice-options:trickle",
        f"a=fingerprint:sha-256 {_FINGERPRINT}",
        f"a=mid:{mid}",
        *(f"a=extmap:{index} {uri}" for index, uri in enumerate(extensions, start=1)),
        "a=sendrecv",
        f"a=msid:stream-{room} track-{room}-{kind}",
        "a=rtcp-mux",
        *(["a=rtcp-rsize"] if kind == "video" else []),
        *lines,
        f"a=ssrc:{ssrc} cname:bench{room}",
        f"a=ssrc:{ssrc} msid:stream-{room} track-{room}-{kind}",
    ]


def sdp_text(*, description_type: str, room: int, sent_ns: int) -> str:
    """A browser-like SDP with audio and video: the offer lists every codec
    Chromium offers, the answer the ones a browser keeps."""
    video = _VIDEO_CODECS if description_type == "offer" else _VIDEO_CODECS[:1] + _VIDEO_CODECS[3:4]
    audio = _AUDIO_CODECS if description_type == "offer" else _AUDIO_CODECS[:1] + _AUDIO_CODECS[6:7]
    lines = [
        "v=0",
        f"o=- {4_611_731_400_430_051_336 + room} 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "a=extmap-allow-mixed",
        f"a=msid-semantic: WMS stream-{room}",
        f"a=x-bench-sent:{sent_ns}",
        *_media_section(kind="audio", mid=0, codecs=audio, extensions=_AUDIO_EXTENSIONS, room=room),
        *_media_section(kind="video", mid=1, codecs=video, extensions=_VIDEO_EXTENSIONS, room=room),
    ]
    return "\r\n".join(lines) + "\r\n"


def description_message(*, description_type: str, room: int) -> dict[str, Any]:
    sdp = sdp_text(description_type=description_type, room=room, sent_ns=time.perf_counter_ns())
    return {"type": "signal", "description": {"type": description_type, "sdp": sdp}}


def candidate_message(*, room: int, index: int, role: str) -> dict[str, Any]:
    port = 40_000 + (room * 50 + index * 2 + (role == "doctor")) % 20_000
    text = (
        f"candidate:{1_000_000 + index} 1 udp {2_122_260_223 - index} 192.0.2.{1 + index % 250} {port} typ host "
        f"generation 0 ufrag r{room:04d} network-id 1 x-bench-sent {time.perf_counter_ns()}"
    )
    return {"type": "signal", "candidate": {"candidate": text, "sdpMid": "0", "sdpMLineIndex": 0}}


def chat_message(*, room: int, turn: int, role: str) -> dict[str, Any]:
    body = f"Message {turn} from the {role} of room {room} [x-bench-sent {time.perf_counter_ns()}]"
    return {"type": "chat", "body": body}


def sent_ns_of(message: dict[str, Any]) -> tuple[str, int | None] | None:
    """The kind of a relayed message and the send time it carries (None for
    the end of the candidates); None for other messages."""
    if message.get("type") == "signal":
        if message.get("description") is not None:
            kind, text = "description", message["description"].get("sdp") or ""
        elif message.get("candidate") is not None:
            kind, text = "candidate", message["candidate"].get("candidate") or ""
        else:
            return "candidate", None
    elif message.get("type") == "chat":
        kind, text = "chat", message.get("body") or ""
    else:
        return None
    found = SENT_PATTERN.search(text)
    return kind, int(found.group(1)) if found else None


# --- The clients ------------------------------------------------------------------


class BenchWebSocket(WebSocket):
    """The tests' client, with frames masked in one big-integer XOR instead
    of byte by byte: a 5 KB SDP costs the load generator microseconds."""

    async def _send_frame(self, opcode: int, payload: bytes) -> None:
        length = len(payload)
        header = bytes([0x80 | opcode])
        if length < 126:
            header += bytes([0x80 | length])
        elif length < 1 << 16:
            header += bytes([0x80 | 126]) + length.to_bytes(2, "big")
        else:
            header += bytes([0x80 | 127]) + length.to_bytes(8, "big")
        mask = os.urandom(4)
        key = (mask * (length // 4 + 1))[:length]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(length, "big")
        self.writer.write(header + mask + masked)
        await self.writer.drain()


@dataclass
class Tally:
    latencies_s: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    delivered: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    connect_s: list[float] = field(default_factory=list)
    chat_sent: int = 0


class MissingMessage(Exception):
    pass


class Participant:
    """One client's socket: a reader task files every message by type as it
    arrives and times the relayed ones."""

    def __init__(self, *, role: str, room: int, url: str, origin: str, session: str, tally: Tally) -> None:
        self.role, self.room, self.url, self.tally = role, room, url, tally
        self.headers = {"Origin": origin, "Cookie": f"sessionid={session}"}
        self.websocket: WebSocket | None = None  # a BenchWebSocket (connect is a classmethod)
        self.inbox: dict[str, asyncio.Queue[dict[str, Any]]] = defaultdict(asyncio.Queue)
        self.closed = asyncio.Event()
        self.leaving = False
        self.reader: asyncio.Task[None] | None = None

    async def join(self, *, timed: bool = True) -> None:
        started = time.perf_counter()
        self.websocket = await BenchWebSocket.connect(self.url, headers=self.headers)
        self.reader = asyncio.create_task(self._read())
        await self.expect("welcome")
        if timed:
            self.tally.connect_s.append(time.perf_counter() - started)

    async def _read(self) -> None:
        assert self.websocket is not None
        try:
            while True:
                text = await self.websocket.receive_text()
                received_ns = time.perf_counter_ns()
                message = json.loads(text)
                relayed = sent_ns_of(message)
                if relayed is not None and not (message["type"] == "chat" and message.get("from") == self.role):
                    kind, sent_ns = relayed
                    self.tally.delivered += 1
                    if sent_ns is not None:
                        self.tally.latencies_s[kind].append((received_ns - sent_ns) / 1e9)
                if message["type"] == "error":
                    self.tally.errors[f"error {message.get('code')}"] += 1
                self.inbox[message["type"]].put_nowait(message)
        except (WebSocketClosed, ConnectionError) as closed:
            if not self.leaving:
                code = closed.code if isinstance(closed, WebSocketClosed) else type(closed).__name__
                self.tally.errors[f"socket closed by the server ({code})"] += 1
        finally:
            self.closed.set()

    async def send(self, message: dict[str, Any]) -> None:
        assert self.websocket is not None
        await self.websocket.send_text(json.dumps(message))
        if message["type"] == "chat":
            self.tally.chat_sent += 1

    async def expect(
        self, message_type: str, accept: Callable[[dict[str, Any]], bool] = lambda _: True
    ) -> dict[str, Any]:
        """The next message of this type that ``accept`` takes (others of
        the type are dropped)."""
        deadline = time.monotonic() + EXPECT_TIMEOUT_S
        queue = self.inbox[message_type]
        while True:
            if queue.empty() and self.closed.is_set():
                raise MissingMessage(f"{message_type} (socket closed)")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise MissingMessage(message_type)
            getter = asyncio.ensure_future(queue.get())
            closing = asyncio.ensure_future(self.closed.wait())
            done, _ = await asyncio.wait({getter, closing}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            closing.cancel()
            if getter not in done:
                getter.cancel()
                continue
            message = getter.result()
            if accept(message):
                return message

    async def leave(self) -> None:
        self.leaving = True
        if self.websocket is not None:
            with suppress(OSError):
                await self.websocket.close()
        if self.reader is not None:
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.reader, 5)


async def signals_from_other_side(participant: Participant, count: int) -> None:
    """The other side's description, its candidates and its null."""
    description = await participant.expect("signal", lambda m: "description" in m)
    if description["description"]["type"] not in ("offer", "answer"):
        raise MissingMessage("description")
    for _ in range(count + 1):
        await participant.expect("signal", lambda m: "candidate" in m)


async def exchange(*, patient: Participant, doctor: Participant, plan: SignalingPlan, at: float) -> None:
    """One consult's signaling and chat, starting at ``at`` (loop time)."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, at - loop.time()))
    room = patient.room
    await doctor.send({"type": "start"})
    await asyncio.gather(patient.expect("started"), doctor.expect("started"))

    async def trickle(participant: Participant) -> None:
        for index in range(plan.candidates):
            await asyncio.sleep(plan.candidate_gap_s)
            await participant.send(candidate_message(room=room, index=index, role=participant.role))
        await participant.send({"type": "signal", "candidate": None})

    async def doctor_side() -> None:
        await doctor.send(description_message(description_type="offer", room=room))
        await trickle(doctor)
        await signals_from_other_side(doctor, plan.candidates)

    async def patient_side() -> None:
        await patient.expect("signal", lambda m: "description" in m)
        await patient.send(description_message(description_type="answer", room=room))
        await trickle(patient)
        for _ in range(plan.candidates + 1):
            await patient.expect("signal", lambda m: "candidate" in m)

    await asyncio.gather(doctor_side(), patient_side())
    for turn in range(plan.chat_rounds):
        await patient.send(chat_message(room=room, turn=turn, role="patient"))
        await doctor.expect("chat", lambda m: m["from"] == "patient")
        await doctor.send(chat_message(room=room, turn=turn, role="doctor"))
        await patient.expect("chat", lambda m: m["from"] == "doctor")


async def exchange_counted(tally: Tally, **arguments: Any) -> None:
    try:
        await exchange(**arguments)
    except MissingMessage as missing:
        tally.errors[f"not received in {EXPECT_TIMEOUT_S:g} s: {missing}"] += 1
    except (OSError, WebSocketClosed) as error:
        tally.errors[f"send failed: {type(error).__name__}"] += 1


def vm_rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


# --- A set-up ---------------------------------------------------------------------


def participants_for(
    rooms: list[dict[str, Any]], servers: list[RunningDaphne], tally: Tally
) -> list[tuple[Participant, Participant]]:
    """(patient, doctor) per room: the patient on the first server, the doctor on the last."""
    pairs = []
    for room in rooms:
        sides = []
        for role, server in (("patient", servers[0]), ("doctor", servers[-1])):
            url = server.base_url.replace("http://", "ws://") + f"/ws/consults/{room['appointment']}/"
            session = room[f"{role}_session"]
            sides.append(
                Participant(
                    role=role, room=room["appointment"], url=url, origin=server.base_url, session=session, tally=tally
                )
            )
        pairs.append((sides[0], sides[1]))
    return pairs


async def join_all(participants: list[Participant], tally: Tally) -> list[Participant]:
    """Join with at most CONNECT_CONCURRENCY handshakes at a time; those that made it."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(participant: Participant) -> Participant | None:
        async with gate:
            try:
                await participant.join()
            except (OSError, AssertionError, asyncio.IncompleteReadError, MissingMessage) as error:
                tally.errors[f"join failed: {type(error).__name__}"] += 1
                return None
            return participant

    joined = await asyncio.gather(*(one(participant) for participant in participants))
    return [participant for participant in joined if participant is not None]


async def set_up_run(
    *, plan: SignalingPlan, rooms: list[dict[str, Any]], servers: list[RunningDaphne], result: SetUpResult
) -> None:
    tally = Tally()
    pids = [server.pid for server in servers]
    # Warm-up: one room's whole exchange (not counted), then the servers' memory.
    warm_patient, warm_doctor = participants_for(rooms[:1], servers, Tally())[0]
    await warm_patient.join(timed=False)
    await warm_doctor.join(timed=False)
    warm_plan = SignalingPlan(rooms=1, candidates=plan.candidates, chat_rounds=1, start_spread_s=0.0)
    loop = asyncio.get_running_loop()
    await exchange(patient=warm_patient, doctor=warm_doctor, plan=warm_plan, at=loop.time())
    await asyncio.gather(warm_patient.leave(), warm_doctor.leave())
    await asyncio.sleep(SETTLE_S)
    result.rss_before_kib = [vm_rss_kib(pid) for pid in pids]

    pairs = participants_for(rooms[1:], servers, tally)
    print(f"    {len(pairs) * 2} clients join ({len(pairs)} patients, then their doctors)", flush=True)
    patients = await join_all([patient for patient, _ in pairs], tally)
    doctors = await join_all([doctor for _, doctor in pairs], tally)
    result.connected = len(patients) + len(doctors)
    result.connections_per_process = [result.connected] if len(servers) == 1 else [len(patients), len(doctors)]
    await asyncio.sleep(SETTLE_S)
    result.rss_connected_kib = [vm_rss_kib(pid) for pid in pids]

    print(f"    the rooms exchange signaling and chat (starting within {plan.start_spread_s:g} s)", flush=True)
    ready = [(patient, doctor) for patient, doctor in pairs if patient in patients and doctor in doctors]
    draw = random.Random(0)  # when each room starts, reproducibly; not security
    cpu_before = [process_cpu_seconds(pid) for pid in pids]
    client_cpu_before = time.process_time()
    started = time.perf_counter()
    begin = loop.time() + 0.2
    await asyncio.gather(
        *(
            exchange_counted(
                tally, patient=patient, doctor=doctor, plan=plan, at=begin + draw.uniform(0, plan.start_spread_s)
            )
            for patient, doctor in ready
        )
    )
    result.exchange_s = time.perf_counter() - started
    result.client_cpu_s = time.process_time() - client_cpu_before
    cpu_after = [process_cpu_seconds(pid) for pid in pids]
    result.server_cpu_s = [
        after - before if before is not None and after is not None else None
        for before, after in zip(cpu_before, cpu_after, strict=True)
    ]
    result.rss_after_kib = [vm_rss_kib(pid) for pid in pids]
    everyone = [participant for pair in pairs for participant in pair]
    await asyncio.gather(*(participant.leave() for participant in everyone))

    per_room = 2 * (1 + plan.candidates + 1) + 2 * plan.chat_rounds
    result.expected = per_room * len(pairs)
    result.delivered = tally.delivered
    result.chat_sent = tally.chat_sent
    result.errors = dict(tally.errors)
    result.connect = relay_of(tally.connect_s)
    result.relay = {kind: relay_of(tally.latencies_s[kind]) for kind in KINDS}
    result.relay["all"] = relay_of([sample for kind in KINDS for sample in tally.latencies_s[kind]])


# --- The run ----------------------------------------------------------------------


def redis_missing() -> str | None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=SERVICE_TIMEOUT_S).ping()
    except redis.RedisError as error:
        return f"Redis is not reachable ({error.__class__.__name__})"
    return None


def signaling_run(plan: SignalingPlan) -> SignalingResult:
    """Run the benchmark; a result that says skipped, failed or what it
    measured. Raises only on interruption, after cleaning up."""
    return outcome_measure(
        SignalingResult(plan=plan),
        missing=postgres_missing(),
        needs="PostgreSQL, where chat is stored",
        measure=lambda result: _signaling_measure(plan, result),
        expected=(psycopg.Error, redis.RedisError),
    )


def _seed(*, rooms: int, labels: list[str], environment: dict[str, str], directory: Path) -> dict[str, Any]:
    seeded: dict[str, Any] = {}
    for label in labels:
        path = directory / f"rooms-{label}.json"
        command = [sys.executable, "-m", "bench.signaling_child", "seed", str(rooms), label, str(path)]
        completed = subprocess.run(
            command,
            cwd=PROJECT_DIR,
            env=environment,
            capture_output=True,
            text=True,
            timeout=SEED_TIMEOUT_S,
            check=False,
        )
        if completed.returncode != 0:
            output = (completed.stdout + completed.stderr)[-LOG_TAIL_CHARS:]
            raise RuntimeError(f"seeding failed ({completed.returncode}):\n{output}")
        seeded[label] = json.loads(path.read_text(encoding="utf-8"))
    return seeded


_OVER_CAPACITY = re.compile(r"(\d+) of \d+ channels over capacity in group")


def server_log_counts(paths: list[Path]) -> tuple[int, int]:
    """Messages channels-redis dropped for an inbox over capacity (it says so
    at INFO, once per ``group_send``), and exceptions inside the application."""
    dropped = exceptions = 0
    for path in paths:
        with suppress(OSError), path.open(encoding="utf-8", errors="replace") as log:
            for line in log:
                if found := _OVER_CAPACITY.search(line):
                    dropped += int(found.group(1))
                elif "Exception inside application" in line:
                    exceptions += 1
    return dropped, exceptions


def _chat_stored(database_url: str, appointments: list[int]) -> int:
    with psycopg.connect(database_url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM consults_chatmessage m JOIN consults_consult c ON c.id = m.consult_id "
            "WHERE c.appointment_id = ANY(%s)",
            (appointments,),
        ).fetchone()
    return int(row[0]) if row else 0


def _signaling_measure(plan: SignalingPlan, result: SignalingResult) -> None:
    started = time.monotonic()
    result.offer_bytes = len(json.dumps(description_message(description_type="offer", room=1)).encode())
    result.answer_bytes = len(json.dumps(description_message(description_type="answer", room=1)).encode())
    without_redis = redis_missing()
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="telemed-bench-signaling-")))
        database_url = stack.enter_context(bench_database())
        redis_url = None if without_redis else stack.enter_context(bench_redis())
        base = embedded_environment(var_dir=directory / "var")
        base.update(DATABASE_URL=database_url, PYTHONUNBUFFERED="1")
        print(f"  database {database_url.rsplit('/', 1)[-1]}: manage.py migrate", flush=True)
        manage_py_run("migrate", "--noinput", environment=base)
        labels = [f"s{index}" for index in range(len(SET_UPS))]
        print(f"  seeding {plan.rooms + 1} open video consults with signed-in sessions per set-up", flush=True)
        seeded = _seed(rooms=plan.rooms + 1, labels=labels, environment=base, directory=directory)
        result.setup_s = time.monotonic() - started
        result.load_average = os.getloadavg()[0]
        for set_up, label in zip(SET_UPS, labels, strict=True):
            outcome = SetUpResult(set_up=set_up, rooms=plan.rooms)
            result.set_ups.append(outcome)
            if set_up.redis and redis_url is None:
                outcome.skipped = without_redis
                print(f"  {set_up.label}: skipped ({without_redis})", flush=True)
                continue
            environment = dict(base, DJANGO_SETTINGS_MODULE=set_up.settings_module)
            if set_up.redis and redis_url:
                environment["REDIS_URL"] = redis_url
            print(f"  {set_up.label}:", flush=True)
            with ExitStack() as servers_stack:
                servers = [
                    servers_stack.enter_context(
                        daphne_process(environment=environment, log_path=directory / f"daphne-{label}-{index}.log")
                    )
                    for index in range(set_up.processes)
                ]
                asyncio.run(set_up_run(plan=plan, rooms=seeded[label], servers=servers, result=outcome))
            logs = [directory / f"daphne-{label}-{index}.log" for index in range(set_up.processes)]
            outcome.dropped_over_capacity, outcome.server_exceptions = server_log_counts(logs)
            outcome.chat_stored = _chat_stored(database_url, [room["appointment"] for room in seeded[label][1:]])
            print(f"    {set_up_line(outcome)}", flush=True)
        print("  stopping, dropping the database", flush=True)


# --- Report -----------------------------------------------------------------------


def _ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1f}"


def _kib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 1024:.1f}"


def _errors(outcome: SetUpResult) -> str:
    if not outcome.errors:
        return "0"
    return f"{outcome.error_count} (" + "; ".join(f"{kind}: {count}" for kind, count in outcome.errors.items()) + ")"


def _per_connection(outcome: SetUpResult) -> str:
    return " / ".join("n/a" if math.isnan(value) else f"{value:.0f}" for value in outcome.kib_per_connection)


def _cpu(outcome: SetUpResult) -> str:
    return " / ".join("n/a" if value is None else f"{value:.1f}" for value in outcome.server_cpu_s)


def set_up_line(outcome: SetUpResult) -> str:
    if outcome.skipped is not None:
        return f"{outcome.set_up.label}: skipped ({outcome.skipped})"
    relay = outcome.relay.get("all")
    return (
        f"relay p50 {_ms(relay.p50_ms) if relay else 'n/a'} ms, p99 {_ms(relay.p99_ms) if relay else 'n/a'} ms "
        f"over {relay.count if relay else 0:,} messages; {outcome.delivered:,}/{outcome.expected:,} delivered; "
        f"{_per_connection(outcome)} KiB per connection; errors {_errors(outcome)}"
    )


def signaling_summary_text(result: SignalingResult) -> str:
    if result.skipped is not None:
        return f"Consult signaling: skipped ({result.skipped})"
    if result.error is not None:
        return f"Consult signaling: FAILED: {result.error}"
    lines = [f"Consult signaling ({result.plan.rooms} rooms, {2 * result.plan.rooms} WebSocket clients):"]
    for outcome in result.set_ups:
        lines.append(f"  {outcome.set_up.label}:")
        lines.append(f"    {set_up_line(outcome)}")
    lines.append("  " + ("passed" if result.passed else "FAILED: see the errors above"))
    return "\n".join(lines)


def signaling_markdown(result: SignalingResult) -> str:
    plan = result.plan
    lines = [
        SIGNALING_HEADING,
        "",
        f"{plan.rooms} consult rooms ({2 * plan.rooms} WebSocket clients, one asyncio process on the same machine, "
        "each with its session cookie and an `Origin` header) exchange a call's signaling and chat through "
        "`/ws/consults/<id>/` (docs/consult-protocol.md): the doctor starts; the doctor's offer "
        f"({result.offer_bytes:,} bytes as sent, a browser-like SDP with audio and video) and its "
        f"{plan.candidates} trickled candidates ({plan.candidate_gap_s * 1000:g} ms apart) and `null`; the patient's "
        f"answer ({result.answer_bytes:,} bytes) and as many candidates; then {plan.chat_rounds} round(s) of chat "
        f"(the patient writes, the doctor answers on receipt). Rooms start at random within {plan.start_spread_s:g} s. "
        "Set-ups: one Daphne process on the in-memory channel layer (the embedded mode's); one, then two "
        "(each room's patient on one, its doctor on the other) on channels-redis with the product's settings "
        "(a Redis socket timeout above the layer's 5 s `BZPOPMIN`, up to 1000 connections, an inbox capacity of "
        "1000: see `CHANNEL_LAYERS` in telemed/settings.py). "
        "Each message carries its send time; the relay latency is from the sender's `send` to the other side "
        "having read and decoded the frame (chat is stored in PostgreSQL before it is relayed). Memory per "
        "connection: the Daphne process's resident memory (`VmRSS`) with every client connected and welcomed, "
        "less its memory after a warm-up room had run the same exchange, over the connections it holds. "
        "Set-up (not timed): a fresh migrated PostgreSQL database, open video appointments with signed-in "
        "sessions made in the session store, `python -m bench.signaling_child seed`; each set-up has rooms and "
        "people of its own. `python -m bench --only signaling` runs just this and rewrites this section.",
        "",
    ]
    if result.skipped is not None:
        lines.append(f"**Skipped**: {result.skipped}.")
        return "\n".join(lines)
    if result.error is not None:
        lines.append(f"**Failed**: {result.error}")
        return "\n".join(lines)
    lines += [
        "| set-up | clients connected | relay p50 ms | relay p99 ms | max ms | messages relayed | "
        "KiB per connection | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for outcome in result.set_ups:
        relay = outcome.relay.get("all")
        if outcome.skipped is not None or relay is None:
            lines.append(f"| {outcome.set_up.label} | skipped: {outcome.skipped} | | | | | | |")
            continue
        lines.append(
            f"| {outcome.set_up.label} | {outcome.connected} | {_ms(relay.p50_ms)} | {_ms(relay.p99_ms)} "
            f"| {_ms(relay.max_ms)} | {outcome.delivered:,} of {outcome.expected:,} | {_per_connection(outcome)} "
            f"| {_errors(outcome)} |"
        )
    lines += [
        "",
        "By kind of message (p50 / p99 ms), and the rest of each set-up's figures (two values: the patients' "
        "process / the doctors' process):",
        "",
    ]
    for outcome in result.set_ups:
        if outcome.skipped is not None:
            continue
        kinds = ", ".join(
            f"{kind} {_ms(outcome.relay[kind].p50_ms)} / {_ms(outcome.relay[kind].p99_ms)} "
            f"({outcome.relay[kind].count:,})"
            for kind in KINDS
            if kind in outcome.relay
        )
        connect = outcome.connect
        lines.append(
            f"- {outcome.set_up.label}: {kinds}. Handshake to `welcome`: p50 "
            f"{_ms(connect.p50_ms) if connect else 'n/a'} ms, p99 {_ms(connect.p99_ms) if connect else 'n/a'} ms "
            f"({CONNECT_CONCURRENCY} at a time). Resident memory (MiB) before / connected / after the exchange: "
            + "; ".join(
                f"{_kib(before)} / {_kib(connected)} / {_kib(after)}"
                for before, connected, after in zip(
                    outcome.rss_before_kib, outcome.rss_connected_kib, outcome.rss_after_kib, strict=True
                )
            )
            + f". The exchange took {outcome.exchange_s:.1f} s ({outcome.messages_per_s:.0f} messages relayed/s); "
            f"Daphne CPU {_cpu(outcome)} s ({_ms(outcome.server_cpu_ms_per_message)} ms per message relayed), "
            f"the clients' {outcome.client_cpu_s:.1f} s. Chat: {outcome.chat_sent:,} sent, "
            f"{'n/a' if outcome.chat_stored is None else f'{outcome.chat_stored:,}'} stored. Daphne's log: "
            f"{outcome.dropped_over_capacity:,} channel-layer messages dropped for an inbox over capacity, "
            f"{outcome.server_exceptions:,} exceptions that closed a socket."
        )
    lines += [
        "",
        "Reading the figures (at this writing):",
        "",
        f"- All rooms start within {plan.start_spread_s:g} s: about {plan.rooms / max(plan.start_spread_s, 1):.0f} "
        "consults starting a second, a burst far beyond a clinic network's normal load; most of the latency is "
        "messages waiting in the channel layer, so the messages relayed per second and Daphne's CPU per message "
        "say more about capacity than the percentiles do.",
        "- channels-redis reads a process's Redis inbox (one for all its sockets) one message per round trip, "
        "one at a time. The consumer relays a room's messages through the room group, so each one is also "
        "delivered to the sender's own channel (and dropped there): two channel-layer messages per message "
        "relayed.",
        "- channels-redis silently drops a message sent to an inbox that already holds `capacity` messages "
        '(it logs that at INFO): the messages "not received" with nothing else wrong.',
        "- With the product's settings, redis-py 8 reads with a 5 s socket timeout, as long as the layer's "
        "`BZPOPMIN`: an idle socket's receive fails with `TimeoutError` and Daphne closes it (1011, also with a "
        "single idle socket); and its pool allows 100 connections in use per process, beyond which commands "
        "fail with `MaxConnectionsError` (the `server_error` answers).",
        "- The in-memory layer scans every channel and group on each send and receive "
        "(`InMemoryChannelLayer._clean_expired`), so its cost per message grows with the number of sockets.",
        "",
        f"- Measured {result.measured_at}; set-up {result.setup_s:.0f} s; the machine's load average over the "
        f"minute before: {result.load_average:.2f}. The clients share the machine's CPUs with the servers, "
        "PostgreSQL and Redis, so their scheduling is part of the latency.",
    ]
    return "\n".join(lines)
