"""Heart rate, HRV, the RR-irregularity screen and signal quality on
recordings whose answer is known."""

from __future__ import annotations

import json

import numpy as np
import numpy.typing as npt
import pytest

from apps.vitals.ecg import DEFAULT_LIMITS, EcgSignal, ecg_analyse
from apps.vitals.ecg.recording import ecg_signal_make
from apps.vitals.ecg.rhythm import af_screen, heart_rate, hrv

RATE_HZ = 250.0


def synthetic_ecg(rr_s: npt.NDArray[np.float64], *, noise_mv: float = 0.01, seed: int = 0) -> EcgSignal:
    """Narrow R waves (1 mV) with a small T wave at the given intervals."""
    rng = np.random.default_rng(seed)
    beats_s = np.concatenate([[0.5], 0.5 + np.cumsum(rr_s)])
    size = int((beats_s[-1] + 0.6) * RATE_HZ)
    time_s = np.arange(size) / RATE_HZ
    samples = rng.normal(0, noise_mv, size)
    for beat in beats_s:
        near = slice(max(0, int((beat - 0.1) * RATE_HZ)), min(size, int((beat + 0.4) * RATE_HZ)))
        t = time_s[near] - beat
        samples[near] += np.exp(-0.5 * (t / 0.012) ** 2) + 0.2 * np.exp(-0.5 * ((t - 0.25) / 0.04) ** 2)
    return ecg_signal_make(
        samples_mv=samples,
        sample_rate_hz=RATE_HZ,
        lead="II",
        started_at=None,
        source_format="test",
        limits=DEFAULT_LIMITS,
    )


def test_it_computes_hrv_from_known_intervals() -> None:
    rr = np.tile([0.8, 0.9], 50)
    result = hrv(rr)
    assert result is not None
    assert result.nn_count == 100
    assert result.rmssd_ms == pytest.approx(100.0)
    assert result.pnn50_pct == pytest.approx(100.0)
    assert result.sdnn_ms == pytest.approx(float(np.std(rr * 1000, ddof=1)))


def test_it_keeps_a_premature_beat_and_its_pause_out_of_hrv() -> None:
    rr = np.array([1.0] * 20 + [0.6, 1.4] + [1.0] * 20)
    result = hrv(rr)
    assert result is not None
    assert result.nn_count == 40
    assert result.rmssd_ms == pytest.approx(0.0)
    assert result.sdnn_ms == pytest.approx(0.0)


def test_it_does_not_let_one_premature_beat_make_the_maximum_heart_rate() -> None:
    rr = np.array([1.0] * 20 + [0.6] + [1.0] * 20)
    result = heart_rate(rr)
    assert result is not None
    assert result.max_bpm == pytest.approx(60 / ((7 * 1.0 + 0.6) / 8))
    assert result.min_bpm == pytest.approx(60.0)
    assert result.mean_bpm == pytest.approx(60 / rr.mean())


def test_it_flags_random_intervals_as_irregular() -> None:
    rr = np.random.default_rng(3).uniform(0.4, 1.2, 600)
    screen = af_screen(rr, quality_ok=True)
    assert screen.assessment == "segments"
    assert screen.segments == 4
    assert screen.segments_flagged >= 3
    assert screen.irregular is True


def test_it_does_not_flag_sinus_rhythm_with_breathing_and_premature_beats() -> None:
    beats = np.arange(600)
    rr = 0.85 + 0.04 * np.sin(2 * np.pi * beats / 4.5) + np.random.default_rng(4).normal(0, 0.01, 600)
    rr[::50] = 0.55  # a premature beat every 50
    screen = af_screen(rr, quality_ok=True)
    assert screen.segments_flagged == 0
    assert screen.irregular is False


def test_it_screens_a_short_recording_as_one_segment() -> None:
    irregular = af_screen(np.random.default_rng(5).uniform(0.4, 1.2, 40), quality_ok=True)
    assert irregular.assessment == "short"
    assert irregular.irregular is True
    regular = af_screen(np.full(40, 0.8) + np.random.default_rng(6).normal(0, 0.005, 40), quality_ok=True)
    assert regular.irregular is False


def test_it_does_not_screen_too_few_beats_or_a_poor_signal() -> None:
    rr = np.random.default_rng(7).uniform(0.4, 1.2, 300)
    assert af_screen(rr[:20], quality_ok=True).assessment == "not_assessed"
    poor = af_screen(rr, quality_ok=False)
    assert poor.assessment == "not_assessed"
    assert poor.irregular is None


def test_it_analyses_a_regular_synthetic_recording() -> None:
    analysis = ecg_analyse(synthetic_ecg(np.full(300, 0.75)))
    assert analysis.beat_count == 301
    assert analysis.heart_rate is not None
    assert analysis.heart_rate.mean_bpm == pytest.approx(80.0, abs=0.2)
    assert analysis.quality.level == "good"
    assert analysis.af.irregular is False
    peaks_s = analysis.r_peaks / RATE_HZ
    np.testing.assert_allclose(peaks_s, 0.5 + 0.75 * np.arange(301), atol=0.02)


def test_it_flags_an_irregular_synthetic_recording() -> None:
    rr = np.random.default_rng(8).uniform(0.45, 1.1, 400)
    analysis = ecg_analyse(synthetic_ecg(rr))
    assert analysis.beat_count == pytest.approx(401, abs=2)
    assert analysis.quality.level != "poor"
    assert analysis.af.irregular is True


def test_it_calls_noise_poor_quality_and_does_not_screen_it() -> None:
    rng = np.random.default_rng(9)
    signal = ecg_signal_make(
        samples_mv=rng.normal(0, 0.3, int(RATE_HZ * 60)),
        sample_rate_hz=RATE_HZ,
        lead="II",
        started_at=None,
        source_format="test",
        limits=DEFAULT_LIMITS,
    )
    analysis = ecg_analyse(signal)
    assert analysis.quality.level == "poor"
    assert analysis.af.assessment == "not_assessed"


def test_it_finds_no_beats_in_a_flat_line() -> None:
    signal = ecg_signal_make(
        samples_mv=np.zeros(int(RATE_HZ * 30)),
        sample_rate_hz=RATE_HZ,
        lead="II",
        started_at=None,
        source_format="test",
        limits=DEFAULT_LIMITS,
    )
    analysis = ecg_analyse(signal)
    assert analysis.beat_count == 0
    assert analysis.heart_rate is None
    assert analysis.hrv is None
    assert analysis.quality.level == "poor"


def test_it_keeps_beats_at_chunk_boundaries_once() -> None:
    """Beats every 0.75 s for 12 minutes: the 5-minute chunks neither lose
    nor double a beat where they meet."""
    analysis = ecg_analyse(synthetic_ecg(np.full(960, 0.75)))
    assert analysis.beat_count == 961
    assert np.all(np.diff(analysis.r_peaks) > 0.5 * RATE_HZ)


def test_it_summarises_in_plain_json() -> None:
    analysis = ecg_analyse(synthetic_ecg(np.full(60, 0.8)))
    summary = json.loads(json.dumps(analysis.summary()))
    assert summary["beat_count"] == 61
    assert summary["detector"].startswith("sleepecg ")
    assert set(summary) >= {"heart_rate", "rr", "hrv", "af", "quality", "duration_s", "sample_rate_hz", "lead"}
    assert summary["af"]["method"] == "dash2009"
    assert analysis.rr_intervals_ms() == pytest.approx(np.full(60, 800.0), abs=8)
