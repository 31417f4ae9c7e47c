"""The pre-call check's rules: the recommendation the server makes from
measured values (at and around each threshold), and the checks of what a
browser sends (its measurements, its offer)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from apps.consults.precheck import (
    AUDIO_MAX_LOSS_PCT,
    AUDIO_MAX_RTT_MS,
    AUDIO_MIN_KBPS,
    EXPLANATIONS,
    OFFER_MAX_BYTES,
    VIDEO_MAX_LOSS_PCT,
    VIDEO_MAX_RTT_MS,
    VIDEO_MIN_KBPS,
    CheckError,
    CheckReason,
    check_assess,
    check_measurements_clean,
    check_recommendation,
    offer_sdp_clean,
)

GOOD = {"rtt_ms": 80.0, "loss_pct": 0.0, "bitrate_kbps": 900.0, "camera_ok": True, "microphone_ok": True}


def _recommend(**changes: Any) -> str:
    return check_recommendation(**{**GOOD, **changes})


def _reason(**changes: Any) -> str:
    return check_assess(**{**GOOD, **changes}).reason


def test_the_thresholds_are_the_documented_ones() -> None:
    """docs/precall-check.md explains these numbers; change both together."""
    assert (VIDEO_MIN_KBPS, VIDEO_MAX_LOSS_PCT, VIDEO_MAX_RTT_MS) == (250, 5.0, 500)
    assert (AUDIO_MIN_KBPS, AUDIO_MAX_LOSS_PCT, AUDIO_MAX_RTT_MS) == (40, 15.0, 1000)


def test_it_recommends_video_on_a_good_link() -> None:
    assert _recommend() == "video"
    assert _reason() == CheckReason.GOOD


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"bitrate_kbps": 250}, "video"),  # enough: at the threshold
        ({"bitrate_kbps": 249.9}, "audio"),
        ({"loss_pct": 4.9}, "video"),
        ({"loss_pct": 5.0}, "audio"),  # at the threshold: too much
        ({"rtt_ms": 499}, "video"),
        ({"rtt_ms": 500}, "audio"),
    ],
)
def test_video_needs_every_figure_within_its_limit(changes: dict[str, float], expected: str) -> None:
    assert _recommend(**changes) == expected
    if expected == "audio":
        assert _reason(**changes) == CheckReason.WEAK_FOR_VIDEO


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"bitrate_kbps": 40}, "audio"),
        ({"bitrate_kbps": 39.9}, "chat"),
        ({"loss_pct": 14.9}, "audio"),
        ({"loss_pct": 15.0}, "chat"),
        ({"rtt_ms": 999}, "audio"),
        ({"rtt_ms": 1000}, "chat"),
    ],
)
def test_audio_needs_every_figure_within_its_own_limit(changes: dict[str, float], expected: str) -> None:
    weak_for_video = {"bitrate_kbps": 100.0, "loss_pct": 8.0, "rtt_ms": 700.0}
    assert _recommend(**{**weak_for_video, **changes}) == expected
    if expected == "chat":
        assert _reason(**{**weak_for_video, **changes}) == CheckReason.WEAK_FOR_AUDIO


@pytest.mark.parametrize("unmeasured", ["loss_pct", "bitrate_kbps"])
def test_a_figure_not_measured_never_counts_as_good(unmeasured: str) -> None:
    assert _recommend(**{unmeasured: None}) == "chat"


def test_without_a_connection_it_recommends_chat() -> None:
    """No round trip measured: the echo peer was never reached."""
    assert _recommend(rtt_ms=None, loss_pct=None, bitrate_kbps=None) == "chat"
    assert _reason(rtt_ms=None) == CheckReason.NO_CONNECTION


def test_without_a_microphone_it_recommends_chat_whatever_the_network() -> None:
    assert _recommend(microphone_ok=False) == "chat"
    assert _reason(microphone_ok=False) == CheckReason.NO_MICROPHONE


def test_without_a_camera_it_recommends_audio_on_a_good_link() -> None:
    assert _recommend(camera_ok=False) == "audio"
    assert _reason(camera_ok=False) == CheckReason.NO_CAMERA
    assert _recommend(camera_ok=False, bitrate_kbps=20) == "chat"


def test_every_reason_has_a_plain_explanation_and_the_result_a_label() -> None:
    reasons = {value for name, value in vars(CheckReason).items() if name.isupper()}
    assert reasons == set(EXPLANATIONS)
    assessment = check_assess(**GOOD)
    assert assessment.label == "Video"
    assert assessment.explanation == "Your connection is good enough for a video consult."


# --- What the browser measured -----------------------------------------------------------

MEASURED = {
    "rtt_ms": 120,
    "loss_pct": 1.25,
    "bitrate_kbps": 480,
    "relay_ok": None,
    "camera_ok": True,
    "microphone_ok": True,
}


def test_it_takes_measurements_rounded_to_a_tenth() -> None:
    measured = check_measurements_clean({**MEASURED, "loss_pct": 1.26, "relay_ok": True})
    assert (measured.rtt_ms, measured.loss_pct, measured.bitrate_kbps) == (120.0, 1.3, 480.0)
    assert measured.relay_ok is True
    assert measured.assess().recommendation == "video"


def test_it_takes_figures_not_measured_as_null() -> None:
    measured = check_measurements_clean({**MEASURED, "rtt_ms": None, "loss_pct": None, "bitrate_kbps": None})
    assert measured.rtt_ms is None
    assert measured.assess().recommendation == "chat"


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        "video",
        {**MEASURED, "recommendation": "video"},  # the server decides it
        {**MEASURED, "extra": 1},
        {k: v for k, v in MEASURED.items() if k != "camera_ok"},
        {k: v for k, v in MEASURED.items() if k != "microphone_ok"},
        {**MEASURED, "camera_ok": "yes"},
        {**MEASURED, "microphone_ok": 1},
        {**MEASURED, "rtt_ms": -1},
        {**MEASURED, "rtt_ms": 60_001},
        {**MEASURED, "loss_pct": 100.5},
        {**MEASURED, "bitrate_kbps": "480"},
        {**MEASURED, "bitrate_kbps": True},
        {**MEASURED, "rtt_ms": math.nan},
        {**MEASURED, "rtt_ms": math.inf},
        {**MEASURED, "relay_ok": "true"},
    ],
)
def test_it_refuses_measurements_that_are_not_valid(data: object) -> None:
    with pytest.raises(CheckError) as refused:
        check_measurements_clean(data)
    assert refused.value.code == "bad_result"
    assert refused.value.message == "The test result is not valid. Please run the test again."


# --- The browser's offer -------------------------------------------------------------------

SDP = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
)


def _body(data: object) -> bytes:
    return json.dumps(data).encode()


def test_it_takes_an_offer_with_audio_video_and_a_data_channel() -> None:
    assert offer_sdp_clean(_body({"type": "offer", "sdp": SDP})) == SDP


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        _body(["offer"]),
        _body({"type": "answer", "sdp": SDP}),
        _body({"type": "offer"}),
        _body({"type": "offer", "sdp": 12}),
        _body({"type": "offer", "sdp": "hello"}),
        _body({"type": "offer", "sdp": SDP.replace("m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n", "")}),
        _body({"type": "offer", "sdp": SDP + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n"}),
        _body({"type": "offer", "sdp": SDP.replace("m=audio", "m=text")}),
    ],
)
def test_it_refuses_an_offer_it_cannot_use(body: bytes) -> None:
    with pytest.raises(CheckError) as refused:
        offer_sdp_clean(body)
    assert refused.value.code == "bad_offer"


def test_it_refuses_an_oversized_offer_before_reading_it() -> None:
    padding = "a=x-padding:" + "x" * OFFER_MAX_BYTES + "\r\n"
    with pytest.raises(CheckError) as refused:
        offer_sdp_clean(_body({"type": "offer", "sdp": SDP + padding}))
    assert refused.value.code == "offer_too_large"
    assert "too much data" in refused.value.message
