"""The consult protocol's message checks and rate limit, apart from the socket."""

from __future__ import annotations

from typing import Any

import pytest

from apps.consults.protocol import ProtocolError, TokenBucket, decode, signal_payload, sync_chat_after


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{", "bad_json"),
        ('{"type": "chat", "n": Infinity}', "bad_json"),
        ("[" * 100_000 + "]" * 100_000, "bad_json"),
        ('"signal"', "bad_message"),
        ('{"type": 1}', "bad_message"),
        ('{"type": "__init__"}', "unknown_type"),
        ('{"type": "_on_chat"}', "unknown_type"),
    ],
)
def test_it_refuses_what_is_not_an_allowed_message(text: str, code: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        decode(text)
    assert refused.value.code == code


def test_it_decodes_an_allowed_message() -> None:
    assert decode('{"type": "chat", "body": "hi"}') == {"type": "chat", "body": "hi"}


@pytest.mark.parametrize(
    "message",
    [
        {"description": {"type": "offer", "sdp": "v=0"}},
        {"description": {"type": "rollback"}},
        {"candidate": {"candidate": "candidate:1 1 udp 1 10.0.0.1 9 typ host", "sdpMid": "0", "sdpMLineIndex": 0}},
        {"candidate": {"candidate": "", "sdpMid": None, "sdpMLineIndex": None, "usernameFragment": "abc"}},
        {"candidate": None},
    ],
)
def test_it_relays_descriptions_and_candidates_unchanged(message: dict[str, Any]) -> None:
    assert signal_payload({"type": "signal", **message}) == message


@pytest.mark.parametrize(
    "message",
    [
        {},
        {"description": {"type": "offer", "sdp": "v=0"}, "candidate": None},
        {"description": "v=0"},
        {"description": {"type": "bogus", "sdp": "v=0"}},
        {"description": {"type": "answer"}},
        {"description": {"type": "answer", "sdp": 7}},
        {"candidate": "candidate:1"},
        {"candidate": {"sdpMid": "0"}},
        {"candidate": {"candidate": "c", "sdpMLineIndex": "0"}},
        {"candidate": {"candidate": "c", "sdpMLineIndex": True}},
        {"candidate": {"candidate": "c", "sdpMid": 0}},
    ],
)
def test_it_refuses_a_malformed_signal(message: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as refused:
        signal_payload({"type": "signal", **message})
    assert refused.value.code == "bad_fields"


def test_sync_takes_an_optional_message_id() -> None:
    assert sync_chat_after({"type": "sync"}) is None
    assert sync_chat_after({"type": "sync", "chat_after": 12}) == 12
    for bad in (-1, "12", 1.5, True):
        with pytest.raises(ProtocolError):
            sync_chat_after({"type": "sync", "chat_after": bad})


def test_the_bucket_allows_a_burst_then_the_steady_rate() -> None:
    now = [100.0]
    bucket = TokenBucket(rate=2, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5  # one token back
    assert [bucket.take(), bucket.take()] == [True, False]
    now[0] += 60  # never more than the burst saved up
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
