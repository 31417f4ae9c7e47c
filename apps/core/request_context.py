"""Per-request facts (request id, client IP) that logs and the audit log need,
kept in a context variable so services don't have to pass the request."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestMeta:
    request_id: str = ""
    ip: str | None = None


_current: contextvars.ContextVar[RequestMeta] = contextvars.ContextVar(
    "telemed_request_meta",
    default=RequestMeta(),  # noqa: B039  # RequestMeta is frozen
)


def current_request_meta() -> RequestMeta:
    return _current.get()


def set_request_meta(meta: RequestMeta) -> contextvars.Token[RequestMeta]:
    return _current.set(meta)


def reset_request_meta(token: contextvars.Token[RequestMeta]) -> None:
    _current.reset(token)
