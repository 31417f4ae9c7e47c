"""The consult WebSocket protocol's rules, apart from the socket: close
codes, message decoding and field checks, and the per-socket rate limit.
docs/consult-protocol.md describes it for client authors."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from apps.scheduling.services import Refusal

# Close codes (4000-4999 are the application's own).
CLOSE_NOT_SIGNED_IN = 4401  # no valid session, or it was signed out
CLOSE_OUTSIDE_WINDOW = 4403  # the room is not open now (an error message with opens_at/closes_at comes first)
CLOSE_NOT_FOUND = 4404  # no such video appointment, cancelled, or not yours
CLOSE_REPLACED = 4409  # the same user opened a newer socket to this room
CLOSE_ENDED = 4410  # the consult has ended (or the appointment is no longer booked)
CLOSE_FLOODING = 4429  # kept sending over the rate limit

CLIENT_TYPES = frozenset({"signal", "chat", "media", "check", "quality", "start", "end", "sync"})
DESCRIPTION_TYPES = frozenset({"offer", "answer", "pranswer", "rollback"})


class ProtocolError(Refusal):
    MESSAGES: dict[str, Promise] = {
        "bad_json": _("The message is not valid JSON."),
        "bad_message": _("A message must be a JSON object with a type."),
        "unknown_type": _("This type of message is not accepted."),
        "bad_fields": _("The message's fields are not valid."),
        "too_big": _("The message is too big."),
        "rate_limited": _("Too many messages: slow down."),
        "not_started": _("The consult has not started yet."),
        "too_early": _("The consult room is not open yet."),
        "too_late": _("The consult room has closed."),
        "ended": _("The consult has ended."),
        "server_error": _("Something went wrong on the server. Please try again."),
    }


def _no_constants(name: str) -> Any:
    raise ValueError(name)  # NaN and Infinity are not JSON


def decode(text: str) -> dict[str, Any]:
    """A client message: a JSON object whose ``type`` is on the allowlist."""
    try:
        message = json.loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        raise ProtocolError("bad_json") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError("bad_message")
    if message["type"] not in CLIENT_TYPES:
        raise ProtocolError("unknown_type")
    return message


def _optional(value: object, kind: type | tuple[type, ...]) -> bool:
    return value is None or (isinstance(value, kind) and not isinstance(value, bool))


def signal_payload(message: dict[str, Any]) -> dict[str, Any]:
    """The ``description`` or the ``candidate`` of a ``signal`` message, as
    the browser's RTCSessionDescriptionInit / RTCIceCandidateInit (a null
    candidate ends the candidates), to be relayed unchanged."""
    has_description = "description" in message
    if has_description == ("candidate" in message):
        raise ProtocolError("bad_fields")
    if has_description:
        description = message["description"]
        if not isinstance(description, dict) or description.get("type") not in DESCRIPTION_TYPES:
            raise ProtocolError("bad_fields")
        if not _optional(description.get("sdp"), str):
            raise ProtocolError("bad_fields")
        if description["type"] != "rollback" and not description.get("sdp"):
            raise ProtocolError("bad_fields")
        return {"description": description}
    candidate = message["candidate"]
    if candidate is not None:
        if not isinstance(candidate, dict) or not isinstance(candidate.get("candidate"), str):
            raise ProtocolError("bad_fields")
        if not _optional(candidate.get("sdpMid"), str):
            raise ProtocolError("bad_fields")
        if not _optional(candidate.get("sdpMLineIndex"), int):
            raise ProtocolError("bad_fields")
        if not _optional(candidate.get("usernameFragment"), str):
            raise ProtocolError("bad_fields")
    return {"candidate": candidate}


def chat_body(message: dict[str, Any]) -> str:
    body = message.get("body")
    if not isinstance(body, str):
        raise ProtocolError("bad_fields")
    return body


def media_mode(message: dict[str, Any]) -> str:
    mode = message.get("mode")
    if not isinstance(mode, str):
        raise ProtocolError("bad_fields")
    return mode


# Why a side changed the media mode: its user chose it, or the client found
# its link too weak for video and switched by itself.
MEDIA_REASONS = frozenset({"manual", "weak_link"})


def media_reason(message: dict[str, Any]) -> str:
    reason = message.get("reason", "manual")
    if reason not in MEDIA_REASONS:
        raise ProtocolError("bad_fields")
    return str(reason)


def sync_chat_after(message: dict[str, Any]) -> int | None:
    after = message.get("chat_after")
    if not _optional(after, int) or (after is not None and after < 0):
        raise ProtocolError("bad_fields")
    return after


def object_field(message: dict[str, Any], name: str) -> dict[str, Any]:
    value = message.get(name)
    if not isinstance(value, dict):
        raise ProtocolError("bad_fields")
    return value


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; one per message."""

    def __init__(self, *, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)
        self.updated = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False
