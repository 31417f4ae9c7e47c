"""``ecg_analyse(signal)``: R peaks, heart rate, RR intervals, HRV, the
RR-irregularity screen and signal quality of one ECG lead.

Long recordings are processed in 5-minute chunks (with 5 s of context on each
side for the filter and the detector to settle), so memory stays a small
multiple of the signal itself: a 24 h lead at 500 Hz is analysed in a few
seconds (docs/ecg-analysis.md has the figures).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import signal as scipy_signal

from apps.vitals.ecg.quality import WINDOW_S as QUALITY_WINDOW_S
from apps.vitals.ecg.quality import Quality, QualityTally, quality_from_tally, quality_windows
from apps.vitals.ecg.recording import EcgSignal
from apps.vitals.ecg.rhythm import (
    AfScreen,
    HeartRate,
    Hrv,
    RrSummary,
    af_screen,
    heart_rate,
    hrv,
    rr_intervals_s,
    rr_summary,
)

ANALYSIS_VERSION = 1
CHUNK_S = 300.0
CONTEXT_S = 5.0
BANDPASS_HZ = (0.5, 40.0)
BANDPASS_ORDER = 2
# Two detections closer than this are one beat (the refractory period).
REFRACTORY_S = 0.2


@dataclass(frozen=True)
class EcgAnalysis:
    sample_rate_hz: float
    duration_s: float
    lead: str
    source_format: str
    detector: str
    r_peaks: npt.NDArray[np.int64]
    heart_rate: HeartRate | None
    rr: RrSummary | None
    hrv: Hrv | None
    af: AfScreen
    quality: Quality

    @property
    def beat_count(self) -> int:
        return int(self.r_peaks.size)

    def rr_intervals_ms(self) -> npt.NDArray[np.float64]:
        return rr_intervals_s(self.r_peaks, self.sample_rate_hz) * 1000.0

    def summary(self) -> dict[str, Any]:
        """Everything but the peak indices, as plain JSON types."""

        def plain(value: object) -> Any:
            return None if value is None else _rounded(dataclasses.asdict(value))  # type: ignore[call-overload]

        return {
            "analysis_version": ANALYSIS_VERSION,
            "detector": self.detector,
            "sample_rate_hz": self.sample_rate_hz,
            "duration_s": round(self.duration_s, 3),
            "lead": self.lead,
            "source_format": self.source_format,
            "beat_count": self.beat_count,
            "heart_rate": plain(self.heart_rate),
            "rr": plain(self.rr),
            "hrv": plain(self.hrv),
            "af": plain(self.af),
            "quality": plain(self.quality),
        }


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {key: round(value, 4) if isinstance(value, float) else value for key, value in values.items()}


@cache
def detector_name() -> str:
    return f"sleepecg {version('sleepecg')}"


def _bandpass(sample_rate_hz: float) -> npt.NDArray[np.float64]:
    high = min(BANDPASS_HZ[1], 0.45 * sample_rate_hz)
    sos = scipy_signal.butter(BANDPASS_ORDER, (BANDPASS_HZ[0], high), btype="bandpass", fs=sample_rate_hz, output="sos")
    return np.asarray(sos, dtype=np.float64)


def _detect(samples: npt.NDArray[np.float64], sample_rate_hz: float) -> npt.NDArray[np.int64]:
    from sleepecg import detect_heartbeats

    if samples.size < 2 or not np.any(samples != samples[0]):
        return np.zeros(0, dtype=np.int64)
    return np.asarray(detect_heartbeats(samples, sample_rate_hz), dtype=np.int64)


def ecg_analyse(signal: EcgSignal) -> EcgAnalysis:
    samples = signal.samples_mv
    fs = signal.sample_rate_hz
    total = samples.size
    chunk = round(CHUNK_S * fs)
    context = round(CONTEXT_S * fs)
    window = round(QUALITY_WINDOW_S * fs)
    sos = _bandpass(fs)
    peaks_parts: list[npt.NDArray[np.int64]] = []
    tally = QualityTally()
    for core_start in range(0, total, chunk):
        core_end = min(total, core_start + chunk)
        start = max(0, core_start - context)
        end = min(total, core_end + context)
        piece = samples[start:end]
        found = _detect(piece, fs) + start
        peaks_parts.append(found[(found >= core_start) & (found < core_end)])
        filtered = scipy_signal.sosfiltfilt(sos, piece)
        # whole 10 s windows inside this chunk; a last part of 5 s or more counts as one
        starts = np.arange(core_start, core_end - window + 1, window, dtype=np.int64)
        remainder_start = starts[-1] + window if starts.size else core_start
        if core_end - remainder_start >= window // 2 and core_end == total:
            starts = np.append(starts, max(0, total - window))
        tally.add(quality_windows(filtered, found - start, fs, starts - start, min(window, piece.size)))
    peaks = np.concatenate(peaks_parts) if peaks_parts else np.zeros(0, dtype=np.int64)
    peaks = _refractory_merge(np.sort(peaks), int(REFRACTORY_S * fs))
    quality = quality_from_tally(tally)
    rr_s = rr_intervals_s(peaks, fs)
    return EcgAnalysis(
        sample_rate_hz=fs,
        duration_s=total / fs,
        lead=signal.lead,
        source_format=signal.source_format,
        detector=detector_name(),
        r_peaks=peaks,
        heart_rate=heart_rate(rr_s),
        rr=rr_summary(rr_s),
        hrv=hrv(rr_s),
        af=af_screen(rr_s, quality_ok=quality.level != "poor"),
        quality=quality,
    )


def _refractory_merge(peaks: npt.NDArray[np.int64], refractory: int) -> npt.NDArray[np.int64]:
    if peaks.size < 2:
        return peaks
    keep = np.concatenate([[True], np.diff(peaks) > refractory])
    return peaks[keep]
