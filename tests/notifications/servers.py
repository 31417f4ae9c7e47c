"""Local stand-ins for the outside services that notifications talk to.

``SmtpServer`` is a real SMTP server (aiosmtpd) and ``SmsGateway`` a real HTTP
server speaking the JSON API that ``HttpSmsBackend`` uses. Both listen on
127.0.0.1 on a free port, run in daemon threads of the test process and can
therefore be reached by a Celery worker subprocess as well as by the test
itself. Both can be told to fail, to be slow or to hang, so that tests can
exercise retries and crashes against real sockets.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

T = TypeVar("T")

HOST = "127.0.0.1"


def _wait(condition: Callable[[], T | None], timeout_s: float, describe: Callable[[], str]) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s: {describe()}")
        time.sleep(0.02)


# --- SMTP -------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedMail:
    """One message as it crossed the wire: the envelope and the parsed content."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    raw: bytes
    received_at: float


class _FreePortController(Controller):
    """A Controller that may bind port 0: it learns the port the kernel chose
    before connecting to itself (aiosmtpd's start-up check uses ``self.port``)."""

    def _trigger_server(self) -> None:
        if isinstance(self.server, asyncio.Server) and self.port == 0:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpServer:
    """An SMTP server on 127.0.0.1 that keeps what it receives.

    ``fail_next(n, code)`` answers the next n messages with a temporary (4xx)
    or permanent (5xx) error at DATA; ``hold()``/``release()`` and
    ``delay_s`` make DATA hang, so that a sender can be killed mid-delivery.
    A message counts as received only when it was answered 250.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[ReceivedMail] = []
        self._fail_next: list[tuple[int, str]] = []
        self._released = threading.Event()
        self._released.set()
        self._stopping = False
        self.delay_s = 0.0
        self.attempts = 0
        self._controller = _FreePortController(
            _SmtpHandler(self), hostname=HOST, port=0, server_hostname="localhost", ready_timeout=10
        )
        self._controller.start()
        self.host = HOST
        self.port: int = self._controller.port

    # What arrived.
    @property
    def received(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._received)

    @property
    def messages(self) -> list[EmailMessage]:
        return [mail.message for mail in self.received]

    def wait_for(self, count: int, timeout_s: float = 10) -> list[EmailMessage]:
        """Wait until at least ``count`` messages arrived; return them all."""

        def enough() -> list[EmailMessage] | None:
            messages = self.messages
            return messages if len(messages) >= count else None

        return _wait(enough, timeout_s, lambda: f"expected {count} email(s), got {len(self.messages)}")

    def clear(self) -> None:
        with self._lock:
            self._received.clear()

    def worker_env(self) -> dict[str, str]:
        """Environment variables that point a Telemed process (a worker) at this server."""
        return {"EMAIL_HOST": self.host, "EMAIL_PORT": str(self.port), "EMAIL_USE_TLS": "false"}

    # Programmed behaviour.
    def fail_next(self, n: int, code: int = 451, text: str = "Try again later") -> None:
        with self._lock:
            self._fail_next.extend([(code, text)] * n)

    def hold(self) -> None:
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def stop(self) -> None:
        self._stopping = True
        self.release()
        self._controller.stop()

    # Called on the server's event loop.
    async def _on_data(self, envelope: Envelope) -> str:
        with self._lock:
            self.attempts += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        while not self._released.is_set() and not self._stopping:
            await asyncio.sleep(0.02)
        with self._lock:
            if self._fail_next:
                code, text = self._fail_next.pop(0)
                return f"{code} {text}"
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        mail = ReceivedMail(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            message=parsed,
            raw=raw,
            received_at=time.time(),
        )
        with self._lock:
            self._received.append(mail)
        return "250 Message accepted for delivery"


class _SmtpHandler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return await self.server._on_data(envelope)


# --- SMS gateway -------------------------------------------------------------


class Headers(dict[str, str]):
    """HTTP headers, looked up without regard to case (keys are stored lower-case)."""

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return super().__contains__(name.lower() if isinstance(name, str) else name)

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


@dataclass
class GatewayRequest:
    """One HTTP request as the gateway saw it, and the status it answered."""

    at: float
    method: str
    path: str
    headers: Headers
    json: Any
    status: int | None = None


@dataclass(frozen=True)
class AcceptedSms:
    id: str
    to: str
    sender: str
    text: str
    idempotency_key: str | None
    accepted_at: float


@dataclass
class _GatewayState:
    requests: list[GatewayRequest] = field(default_factory=list)
    accepted: list[AcceptedSms] = field(default_factory=list)
    accepted_by_key: dict[str, AcceptedSms] = field(default_factory=dict)
    accepted_count_by_key: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    fail_next: list[int] = field(default_factory=list)
    rejected_numbers: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0


class SmsGateway:
    """An SMS provider's HTTP API on 127.0.0.1, as ``HttpSmsBackend`` speaks it.

    ``POST /send`` with ``Authorization: Bearer <api_key>`` and a JSON body
    ``{"to", "from", "text"}`` answers ``200 {"id": "gw-<n>"}``. A repeated
    ``Idempotency-Key`` that was already accepted answers 200 with the first
    id and is counted in ``duplicates``, not in ``accepted``.
    """

    def __init__(self, api_key: str = "test-sms-key") -> None:
        self.api_key = api_key
        self.delay_s = 0.0
        self._lock = threading.Lock()
        self._state = _GatewayState()
        self._released = threading.Event()
        self._released.set()
        self._httpd = ThreadingHTTPServer((HOST, 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self.host = HOST
        self.port: int = self._httpd.server_address[1]
        self.url = f"http://{HOST}:{self.port}/send"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="sms-gateway", daemon=True)
        self._thread.start()

    # What arrived.
    @property
    def requests(self) -> list[GatewayRequest]:
        with self._lock:
            return list(self._state.requests)

    @property
    def accepted(self) -> list[AcceptedSms]:
        with self._lock:
            return list(self._state.accepted)

    @property
    def accepted_count_by_key(self) -> dict[str, int]:
        with self._lock:
            return dict(self._state.accepted_count_by_key)

    @property
    def duplicates(self) -> int:
        with self._lock:
            return self._state.duplicates

    @property
    def in_flight(self) -> int:
        """Requests being handled right now (held or delayed)."""
        with self._lock:
            return self._state.in_flight

    def wait_for_accepted(self, count: int, timeout_s: float = 10) -> list[AcceptedSms]:
        def enough() -> list[AcceptedSms] | None:
            accepted = self.accepted
            return accepted if len(accepted) >= count else None

        return _wait(
            enough,
            timeout_s,
            lambda: f"expected {count} accepted SMS, got {len(self.accepted)} (requests: {self._summary()})",
        )

    def wait_for_requests(self, count: int, timeout_s: float = 10) -> list[GatewayRequest]:
        """Wait until ``count`` requests arrived (answered or not yet)."""

        def enough() -> list[GatewayRequest] | None:
            requests = self.requests
            return requests if len(requests) >= count else None

        return _wait(enough, timeout_s, lambda: f"expected {count} request(s), got {len(self.requests)}")

    def worker_env(self) -> dict[str, str]:
        """Environment variables that point a Telemed process (a worker) at this gateway."""
        return {"SMS_BACKEND": "http", "SMS_HTTP_URL": self.url, "SMS_HTTP_API_KEY": self.api_key}

    def clear(self) -> None:
        """Forget what arrived (programmed failures and rejections stay)."""
        with self._lock:
            fail_next, rejected = self._state.fail_next, self._state.rejected_numbers
            self._state = _GatewayState(fail_next=fail_next, rejected_numbers=rejected)

    # Programmed behaviour.
    def fail_next(self, n: int, status: int = 503) -> None:
        with self._lock:
            self._state.fail_next.extend([status] * n)

    def reject_number(self, number: str, status: int = 400) -> None:
        with self._lock:
            self._state.rejected_numbers[number] = status

    def hold(self) -> None:
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def stop(self) -> None:
        self.release()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    # Called on the server's handler threads.
    def _summary(self) -> str:
        return ", ".join(f"{r.method} {r.path} -> {r.status}" for r in self.requests) or "none"

    def _handle(self, request: GatewayRequest) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self._state.requests.append(request)
        if request.method != "POST" or request.path != "/send":
            return 404, {"error": "not found"}
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, {"error": "invalid API key"}
        with self._lock:
            self._state.in_flight += 1
        try:
            if self.delay_s:
                time.sleep(self.delay_s)
            self._released.wait()
        finally:
            with self._lock:
                self._state.in_flight -= 1
        body = request.json
        if not isinstance(body, dict) or not all(isinstance(body.get(k), str) for k in ("to", "from", "text")):
            return 400, {"error": "the body must be a JSON object with string fields to, from and text"}
        key = request.headers.get("idempotency-key")
        with self._lock:
            state = self._state
            if state.fail_next:
                return state.fail_next.pop(0), {"error": "temporarily unavailable"}
            if body["to"] in state.rejected_numbers:
                return state.rejected_numbers[body["to"]], {"error": "invalid destination number", "to": body["to"]}
            if key is not None and key in state.accepted_by_key:
                state.duplicates += 1
                return 200, {"id": state.accepted_by_key[key].id}
            sms = AcceptedSms(
                id=f"gw-{len(state.accepted) + 1}",
                to=body["to"],
                sender=body["from"],
                text=body["text"],
                idempotency_key=key,
                accepted_at=time.time(),
            )
            state.accepted.append(sms)
            if key is not None:
                state.accepted_by_key[key] = sms
                state.accepted_count_by_key[key] += 1
            return 200, {"id": sms.id}


def _make_handler(gateway: SmsGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self._serve()

        def do_GET(self) -> None:
            self._serve()

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                parsed: Any = json.loads(raw) if raw else None
            except ValueError:
                parsed = None
            request = GatewayRequest(
                at=time.time(),
                method=self.command,
                path=self.path,
                headers=Headers((name.lower(), value) for name, value in self.headers.items()),
                json=parsed,
            )
            status, answer = gateway._handle(request)
            request.status = status
            payload = json.dumps(answer).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the client gave up (or was killed) while we held its request

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
