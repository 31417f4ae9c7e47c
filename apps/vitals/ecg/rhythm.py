"""Heart rate, heart-rate variability and the RR-irregularity screen, all
from the R-peak times (docs/ecg-analysis.md gives the definitions)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# RR intervals outside this range are gaps or missed/extra beats, not rhythm.
RR_MIN_S = 0.25
RR_MAX_S = 3.0
# An NN interval differs from the local median by at most this fraction
# (the usual filter that keeps ectopic beats out of HRV).
NN_MAX_CHANGE = 0.2
NN_MEDIAN_SPAN = 11
HRV_MIN_NN = 10
HR_WINDOW_BEATS = 8

# Dash et al. 2009: 128-beat segments, 8 largest and 8 smallest RR dropped
# for RMSSD and Shannon entropy, 16 histogram bins, and three thresholds.
AF_SEGMENT_BEATS = 128
AF_TRIM_PER_SIDE = 8
AF_ENTROPY_BINS = 16
AF_NRMSSD_MIN = 0.1
AF_ENTROPY_MIN = 0.7
AF_TPR_SIGMAS = 3.0  # 0.54-0.77 at 128 beats, the published band
AF_MIN_BEATS = 32  # fewer RR intervals than this: not assessed
AF_METHOD = "dash2009"


@dataclass(frozen=True)
class HeartRate:
    mean_bpm: float
    min_bpm: float
    max_bpm: float


@dataclass(frozen=True)
class RrSummary:
    count: int
    mean_ms: float
    min_ms: float
    max_ms: float


@dataclass(frozen=True)
class Hrv:
    nn_count: int
    sdnn_ms: float
    rmssd_ms: float
    pnn50_pct: float


@dataclass(frozen=True)
class AfScreen:
    """The RR-irregularity screen: a hint for the doctor, not a diagnosis.

    ``assessment`` is ``segments`` (128-beat segments, as published),
    ``short`` (fewer than 128 beats: the whole recording as one segment,
    an adaptation the paper did not validate) or ``not_assessed``.
    """

    method: str
    assessment: str
    segments: int
    segments_flagged: int
    irregular: bool | None
    nrmssd: float | None
    shannon_entropy: float | None
    turning_point_ratio: float | None


def rr_intervals_s(r_peaks: npt.NDArray[np.int64], sample_rate_hz: float) -> npt.NDArray[np.float64]:
    return np.diff(r_peaks).astype(np.float64) / sample_rate_hz


def rr_valid_mask(rr_s: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    return (rr_s >= RR_MIN_S) & (rr_s <= RR_MAX_S)


def rr_summary(rr_s: npt.NDArray[np.float64]) -> RrSummary | None:
    valid = rr_s[rr_valid_mask(rr_s)]
    if valid.size == 0:
        return None
    return RrSummary(
        count=int(valid.size),
        mean_ms=float(valid.mean() * 1000),
        min_ms=float(valid.min() * 1000),
        max_ms=float(valid.max() * 1000),
    )


def heart_rate(rr_s: npt.NDArray[np.float64]) -> HeartRate | None:
    """Mean from all valid RR intervals; minimum and maximum from the mean of
    8 consecutive valid intervals (as Holter reports do), so a single
    premature beat does not make the maximum."""
    valid_mask = rr_valid_mask(rr_s)
    valid = rr_s[valid_mask]
    if valid.size < 2:
        return None
    window = min(HR_WINDOW_BEATS, int(valid.size))
    kernel = np.ones(window) / window
    rolling = np.convolve(rr_s, kernel, mode="valid")
    # only windows made of valid intervals
    valid_windows = np.convolve(valid_mask.astype(np.float64), np.ones(window), mode="valid") >= window - 0.5
    rolling = rolling[valid_windows]
    if rolling.size == 0:
        rolling = np.array([valid.mean()])
    return HeartRate(
        mean_bpm=float(60.0 / valid.mean()),
        min_bpm=float(60.0 / rolling.max()),
        max_bpm=float(60.0 / rolling.min()),
    )


def nn_mask(rr_s: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Normal-to-normal intervals: valid, and within 20 % of the median of the
    11 intervals around them (drops a premature beat and its pause, keeps
    the normal interval after them)."""
    valid = rr_valid_mask(rr_s)
    if rr_s.size < NN_MEDIAN_SPAN:
        reference = np.full(rr_s.size, np.median(rr_s[valid]) if valid.any() else 1.0)
    else:
        half = NN_MEDIAN_SPAN // 2
        padded = np.pad(rr_s, half, mode="edge")
        reference = np.median(np.lib.stride_tricks.sliding_window_view(padded, NN_MEDIAN_SPAN), axis=1)
    return valid & (np.abs(rr_s - reference) <= NN_MAX_CHANGE * reference)


def hrv(rr_s: npt.NDArray[np.float64]) -> Hrv | None:
    """Time-domain HRV on NN intervals (Task Force of the ESC and NASPE, 1996)."""
    mask = nn_mask(rr_s)
    nn = rr_s[mask] * 1000.0
    if nn.size < HRV_MIN_NN:
        return None
    pairs = mask[1:] & mask[:-1]
    successive = np.diff(rr_s * 1000.0)[pairs]
    if successive.size == 0:
        return None
    return Hrv(
        nn_count=int(nn.size),
        sdnn_ms=float(np.std(nn, ddof=1)),
        rmssd_ms=float(np.sqrt(np.mean(successive**2))),
        pnn50_pct=float(np.mean(np.abs(successive) > 50.0) * 100.0),
    )


def _segment_statistics(segment: npt.NDArray[np.float64]) -> tuple[float, float, float, bool]:
    n = segment.size
    trim = round(AF_TRIM_PER_SIDE * n / AF_SEGMENT_BEATS)
    ordered = np.sort(segment)
    trimmed_values = ordered[trim : n - trim] if n - 2 * trim >= 4 else ordered
    # RMSSD over the segment in time order with the extremes removed
    keep = np.ones(n, dtype=bool)
    if trim:
        order = np.argsort(segment, kind="stable")
        keep[order[:trim]] = False
        keep[order[n - trim :]] = False
    kept = segment[keep]
    nrmssd = float(np.sqrt(np.mean(np.diff(kept) ** 2)) / kept.mean()) if kept.size > 1 else 0.0
    counts, _edges = np.histogram(trimmed_values, bins=AF_ENTROPY_BINS)
    probabilities = counts[counts > 0] / trimmed_values.size
    entropy = float(-np.sum(probabilities * np.log(probabilities)) / np.log(AF_ENTROPY_BINS))
    middle = segment[1:-1]
    turning = ((middle > segment[:-2]) & (middle > segment[2:])) | ((middle < segment[:-2]) & (middle < segment[2:]))
    tpr = float(np.count_nonzero(turning) / n)
    expected = (2 * n - 4) / 3 / n
    sigma = np.sqrt((16 * n - 29) / 90) / n
    tpr_random = bool(abs(tpr - expected) <= AF_TPR_SIGMAS * sigma)
    flagged = bool(nrmssd >= AF_NRMSSD_MIN and entropy >= AF_ENTROPY_MIN and tpr_random)
    return nrmssd, entropy, tpr, flagged


def af_screen(rr_s: npt.NDArray[np.float64], *, quality_ok: bool) -> AfScreen:
    """Dash S, Chon KH, Lu S, Raeder EA. Automatic real time detection of
    atrial fibrillation. Ann Biomed Eng 2009;37(9):1701-9: a segment is AF-like
    when its normalised RMSSD, Shannon entropy and turning-point ratio all say
    the RR series is irregular, random and complex."""
    valid = rr_s[rr_valid_mask(rr_s)]
    if valid.size < AF_MIN_BEATS or not quality_ok:
        return AfScreen(AF_METHOD, "not_assessed", 0, 0, None, None, None, None)
    if valid.size < AF_SEGMENT_BEATS:
        nrmssd, entropy, tpr, flagged = _segment_statistics(valid)
        return AfScreen(AF_METHOD, "short", 1, int(flagged), flagged, nrmssd, entropy, tpr)
    count = valid.size // AF_SEGMENT_BEATS
    segments = valid[: count * AF_SEGMENT_BEATS].reshape(count, AF_SEGMENT_BEATS)
    results = [_segment_statistics(segment) for segment in segments]
    flags = np.array([result[3] for result in results])
    consecutive = bool(np.any(flags[1:] & flags[:-1])) if count > 1 else False
    irregular = consecutive or (count < 3 and bool(flags.any()))
    return AfScreen(
        method=AF_METHOD,
        assessment="segments",
        segments=int(count),
        segments_flagged=int(flags.sum()),
        irregular=irregular,
        nrmssd=float(np.median([result[0] for result in results])),
        shannon_entropy=float(np.median([result[1] for result in results])),
        turning_point_ratio=float(np.median([result[2] for result in results])),
    )
