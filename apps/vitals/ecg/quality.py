"""Signal quality: 10-second windows judged by the rules of Orphanidou et al.
(IEEE J Biomed Health Inform 2015;19(3):832-8): a plausible heart rate
(40-180/min), no RR gap over 3 s, longest/shortest RR under 2.2, and beats
that look alike (mean correlation with the window's average beat >= 0.66)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

WINDOW_S = 10.0
HR_MIN_BPM = 40.0
HR_MAX_BPM = 180.0
RR_GAP_MAX_S = 3.0
RR_RATIO_MAX = 2.2
TEMPLATE_CORRELATION_MIN = 0.66
LEVEL_GOOD = 0.9
LEVEL_ACCEPTABLE = 0.5


@dataclass
class QualityTally:
    windows: int = 0
    acceptable: int = 0
    correlation_sum: float = 0.0
    correlation_windows: int = 0

    def add(self, other: QualityTally) -> None:
        self.windows += other.windows
        self.acceptable += other.acceptable
        self.correlation_sum += other.correlation_sum
        self.correlation_windows += other.correlation_windows


@dataclass(frozen=True)
class Quality:
    index: float
    level: str
    windows: int
    windows_acceptable: int
    mean_template_correlation: float | None


def quality_from_tally(tally: QualityTally) -> Quality:
    index = tally.acceptable / tally.windows if tally.windows else 0.0
    if index >= LEVEL_GOOD:
        level = "good"
    elif index >= LEVEL_ACCEPTABLE:
        level = "acceptable"
    else:
        level = "poor"
    correlation = tally.correlation_sum / tally.correlation_windows if tally.correlation_windows else None
    return Quality(
        index=float(index),
        level=level,
        windows=tally.windows,
        windows_acceptable=tally.acceptable,
        mean_template_correlation=None if correlation is None else float(correlation),
    )


def _template_correlation(
    filtered: npt.NDArray[np.float64], peaks: npt.NDArray[np.int64], half_width: int
) -> float | None:
    inside = peaks[(peaks - half_width >= 0) & (peaks + half_width < filtered.size)]
    if inside.size < 2 or half_width < 2:
        return None
    offsets = np.arange(-half_width, half_width + 1)
    beats = filtered[inside[:, None] + offsets[None, :]]
    beats = beats - beats.mean(axis=1, keepdims=True)
    template = beats.mean(axis=0)
    template_norm = np.linalg.norm(template)
    beat_norms = np.linalg.norm(beats, axis=1)
    if template_norm == 0:
        return 0.0
    correlations = (beats @ template) / np.maximum(beat_norms * template_norm, 1e-12)
    return float(correlations.mean())


def quality_windows(
    filtered: npt.NDArray[np.float64],
    peaks: npt.NDArray[np.int64],
    sample_rate_hz: float,
    window_starts: npt.NDArray[np.int64],
    window_samples: int,
) -> QualityTally:
    """Judge the windows starting at ``window_starts`` (indices into
    ``filtered``); ``peaks`` are R peaks in the same coordinates."""
    tally = QualityTally()
    for start in window_starts:
        end = start + window_samples
        in_window = peaks[(peaks >= start) & (peaks < end)]
        tally.windows += 1
        duration_s = window_samples / sample_rate_hz
        if in_window.size < 2:
            continue
        rr_s = np.diff(in_window) / sample_rate_hz
        edges_s = np.array([(in_window[0] - start) / sample_rate_hz, (end - in_window[-1]) / sample_rate_hz])
        rate_bpm = in_window.size * 60.0 / duration_s
        half_width = round(float(np.median(rr_s)) * sample_rate_hz / 2)
        correlation = _template_correlation(filtered, in_window, half_width)
        if correlation is not None:
            tally.correlation_sum += correlation
            tally.correlation_windows += 1
        if (
            HR_MIN_BPM <= rate_bpm <= HR_MAX_BPM
            and float(max(rr_s.max(), edges_s.max())) <= RR_GAP_MAX_S
            and float(rr_s.max() / rr_s.min()) < RR_RATIO_MAX
            and correlation is not None
            and correlation >= TEMPLATE_CORRELATION_MIN
        ):
            tally.acceptable += 1
    return tally
