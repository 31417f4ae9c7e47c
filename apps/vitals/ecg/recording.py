"""What an ECG file decodes to, what is refused, and the limits that decide it."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

MEBIBYTE = 1024 * 1024

# An upload larger than this is refused before it is parsed. A 24 h two-lead
# recording at 500 Hz does not fit (EDF: 173 MB); see docs/ecg-analysis.md.
MAX_FILE_BYTES = 50 * MEBIBYTE
MAX_ZIP_MEMBERS = 16
MAX_ZIP_UNCOMPRESSED_BYTES = 200 * MEBIBYTE
MAX_ZIP_RATIO = 50
MIN_SAMPLE_RATE_HZ = 100.0
MAX_SAMPLE_RATE_HZ = 10_000.0
MIN_DURATION_S = 5.0
MAX_DURATION_S = 48 * 3600.0
# Beyond this an ECG value is not an ECG in the stated unit (µV read as mV, a
# counter, an image): electrode offsets stay within a few hundred mV.
MAX_ABS_MV = 500.0


@dataclass(frozen=True)
class EcgLimits:
    """The limits a parser enforces; the defaults are the upload limits."""

    max_file_bytes: int = MAX_FILE_BYTES
    max_zip_members: int = MAX_ZIP_MEMBERS
    max_zip_uncompressed_bytes: int = MAX_ZIP_UNCOMPRESSED_BYTES
    max_zip_ratio: float = MAX_ZIP_RATIO
    min_sample_rate_hz: float = MIN_SAMPLE_RATE_HZ
    max_sample_rate_hz: float = MAX_SAMPLE_RATE_HZ
    min_duration_s: float = MIN_DURATION_S
    max_duration_s: float = MAX_DURATION_S


DEFAULT_LIMITS = EcgLimits()


class EcgFileError(Exception):
    """A file refused, with a stable ``code`` for programs and a translated
    ``message`` for people (rendered in the language active when read)."""

    def __init__(self, code: str, message: str | Promise, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params
        self._message = message

    @property
    def message(self) -> str:
        text = str(self._message)
        return text % self.params if self.params else text

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True, eq=False)
class EcgSignal:
    """One ECG lead in millivolts.

    ``started_at`` is timezone-aware when the file states its offset (Apple
    Watch, the generic CSV with an offset), naive when the format has no time
    zone (EDF, WFDB: local time of the recorder), None when the file has no
    start time.
    """

    samples_mv: npt.NDArray[np.float64]
    sample_rate_hz: float
    lead: str
    started_at: datetime.datetime | None
    source_format: str

    @property
    def duration_s(self) -> float:
        return len(self.samples_mv) / self.sample_rate_hz


def sample_rate_check(sample_rate_hz: float, limits: EcgLimits) -> float:
    if not np.isfinite(sample_rate_hz) or not (
        limits.min_sample_rate_hz <= sample_rate_hz <= limits.max_sample_rate_hz
    ):
        raise EcgFileError(
            "sample_rate",
            _("The sampling rate (%(rate)s Hz) is not one an ECG is recorded at (%(low)s to %(high)s Hz)."),
            rate=f"{sample_rate_hz:g}",
            low=f"{limits.min_sample_rate_hz:g}",
            high=f"{limits.max_sample_rate_hz:g}",
        )
    return float(sample_rate_hz)


def ecg_signal_make(
    *,
    samples_mv: npt.ArrayLike,
    sample_rate_hz: float,
    lead: str,
    started_at: datetime.datetime | None,
    source_format: str,
    limits: EcgLimits,
) -> EcgSignal:
    """Check what every format shares (rate, length, finite plausible values)
    and build the signal."""
    rate = sample_rate_check(sample_rate_hz, limits)
    samples = np.ascontiguousarray(samples_mv, dtype=np.float64)
    if samples.ndim != 1 or samples.size == 0:
        raise EcgFileError("no_samples", _("The file holds no ECG samples."))
    duration_s = samples.size / rate
    if duration_s < limits.min_duration_s:
        raise EcgFileError(
            "too_short",
            _("The recording lasts %(duration)s s; at least %(minimum)s s are needed."),
            duration=f"{duration_s:.1f}",
            minimum=f"{limits.min_duration_s:g}",
        )
    if duration_s > limits.max_duration_s:
        raise EcgFileError(
            "too_long",
            _("The recording lasts %(hours)s h; at most %(maximum)s h can be analysed."),
            hours=f"{duration_s / 3600:.1f}",
            maximum=f"{limits.max_duration_s / 3600:g}",
        )
    # min and max carry NaN and infinity through, without a temporary the size of the signal
    lowest, highest = float(samples.min()), float(samples.max())
    if not (np.isfinite(lowest) and np.isfinite(highest)):
        raise EcgFileError("not_finite", _("The file holds values that are not numbers."))
    if max(highest, -lowest) > MAX_ABS_MV:
        raise EcgFileError(
            "out_of_range",
            _("The values are far beyond what an ECG shows; check the unit (mV or µV)."),
        )
    return EcgSignal(
        samples_mv=samples,
        sample_rate_hz=rate,
        lead=lead.strip()[:32] or "?",
        started_at=started_at,
        source_format=source_format,
    )


def unit_scale_to_mv(unit: str) -> float | None:
    """Factor from a voltage unit to mV, or None for anything else."""
    normalised = unit.strip().replace("μ", "µ").replace("u", "µ").lower()
    return {"mv": 1.0, "µv": 1e-3, "v": 1e3, "nv": 1e-6}.get(normalised)
