"""MIT-BIH record 100 (apps/vitals/ecg/samples/mitdb/, ODC-By: Moody & Mark
2001, Goldberger et al. 2000) and the same recording written in the other
formats we read: an Apple Watch Health-export CSV (512 Hz, µV), EDF and a
WFDB zip. Used by the tests and by bench/ecg.py."""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[3]
MITDB = Path(os.environ.get("TELEMED_ECG_DATA", REPO / "apps" / "vitals" / "ecg" / "samples" / "mitdb"))
RECORD = "100"
# Annotation symbols that are beats (the WFDB tools' beat codes); '+' and
# other rhythm or comment marks are not.
BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")
APPLE_RATE_HZ = 512


@dataclass(frozen=True)
class Record:
    leads_mv: dict[str, npt.NDArray[np.float64]]
    sample_rate_hz: float
    beats: npt.NDArray[np.int64]

    def beats_at(self, sample_rate_hz: float) -> npt.NDArray[np.int64]:
        return np.round(self.beats * sample_rate_hz / self.sample_rate_hz).astype(np.int64)


@cache
def record_100() -> Record:
    import wfdb

    if not (MITDB / f"{RECORD}.hea").exists():
        raise FileNotFoundError(f"MIT-BIH record 100 is not at {MITDB} (set TELEMED_ECG_DATA)")
    record = wfdb.rdrecord(str(MITDB / RECORD))
    annotation = wfdb.rdann(str(MITDB / RECORD), "atr")
    beats = np.array(
        [sample for sample, symbol in zip(annotation.sample, annotation.symbol, strict=True) if symbol in BEAT_SYMBOLS],
        dtype=np.int64,
    )
    leads = {
        name: np.asarray(record.p_signal[:, index], dtype=np.float64) for index, name in enumerate(record.sig_name)
    }
    return Record(leads_mv=leads, sample_rate_hz=float(record.fs), beats=beats)


def resample(samples: npt.NDArray[np.float64], from_hz: float, to_hz: float) -> npt.NDArray[np.float64]:
    from scipy import signal

    ratio = Fraction(to_hz / from_hz).limit_denominator(1000)
    return np.asarray(signal.resample_poly(samples, ratio.numerator, ratio.denominator), dtype=np.float64)


def wfdb_files() -> dict[str, bytes]:
    return {name: (MITDB / name).read_bytes() for name in (f"{RECORD}.hea", f"{RECORD}.dat")}


def zip_bytes(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def wfdb_zip() -> bytes:
    return zip_bytes({f"record/{name}": data for name, data in wfdb_files().items()})


def apple_csv(
    samples_uv: npt.NDArray[np.float64],
    *,
    sample_rate_hz: int = APPLE_RATE_HZ,
    decimal_comma: bool = False,
    delimiter: str = ",",
    sample_rate_line: str | None = None,
) -> bytes:
    """The layout of an Apple Watch ECG in the Health export: key,value header
    lines, a blank line, then one value in µV per line. With
    ``decimal_comma`` the values are written as a comma locale does, quoted
    when the separator is itself a comma."""
    rate_line = sample_rate_line or f"Sample Rate{delimiter}{sample_rate_hz} hertz"
    header = [
        f"Name{delimiter}Alice Example",
        f'Date of Birth{delimiter}"Jan 1, 1970"' if delimiter == "," else f"Date of Birth{delimiter}1970-01-01",
        f"Recorded Date{delimiter}2026-11-30 09:15:02 +0800",
        f"Classification{delimiter}Sinus Rhythm",
        f"Symptoms{delimiter}",
        f"Software Version{delimiter}2",
        f'Device{delimiter}"Watch7,2"' if delimiter == "," else f"Device{delimiter}Watch7,2",
        rate_line,
        f"Lead{delimiter}Lead I",
        f"Unit{delimiter}µV",
        "",
        "",
    ]
    values = [f"{value:.3f}" for value in samples_uv]
    if decimal_comma:
        values = [value.replace(".", ",") for value in values]
        if delimiter == ",":
            values = [f'"{value}"' for value in values]
    return ("\n".join(header) + "\n".join(values) + "\n").encode("utf-8")


def record_100_apple_csv(**options: object) -> bytes:
    record = record_100()
    mlii = resample(record.leads_mv["MLII"], record.sample_rate_hz, APPLE_RATE_HZ)
    return apple_csv(mlii * 1000.0, **options)  # type: ignore[arg-type]


def generic_csv(samples_mv: npt.NDArray[np.float64], sample_rate_hz: float, *, unit: str = "mV") -> bytes:
    scale = 1000.0 if unit in ("uV", "µV") else 1.0
    lines = [f"sample_rate_hz={sample_rate_hz:g}", f"unit={unit}", "lead=II", "started_at=2026-11-30T09:15:02+08:00"]
    lines += [f"{value * scale:.4f}" for value in samples_mv]
    return ("\n".join(lines) + "\n").encode()


def edf_bytes(
    leads_mv: dict[str, npt.NDArray[np.float64]],
    sample_rate_hz: float,
    *,
    unit: str = "uV",
    record_duration_s: float = 1.0,
) -> bytes:
    """EDF with one signal per lead, 16-bit, physical range ±(peak), in µV by default."""
    import datetime

    import edfio

    scale = 1000.0 if unit == "uV" else 1.0
    signals = []
    for label, samples in leads_mv.items():
        values = samples * scale
        limit = float(np.ceil(np.max(np.abs(values)) + 1.0))
        signals.append(
            edfio.EdfSignal(
                values,
                sampling_frequency=sample_rate_hz,
                label=label,
                physical_dimension=unit,
                physical_range=(-limit, limit),
            )
        )
    edf = edfio.Edf(
        signals,
        starttime=datetime.time(9, 15, 2),
        data_record_duration=record_duration_s,
    )
    buffer = io.BytesIO()
    edf.write(buffer)
    return buffer.getvalue()


def record_100_edf(sample_rate_hz: float | None = None) -> bytes:
    """Record 100 as EDF: both leads (labelled "ECG MLII" and "ECG V5"), cut
    to whole seconds, at its own rate or resampled."""
    record = record_100()
    rate = sample_rate_hz or record.sample_rate_hz
    leads = {}
    for name, samples in record.leads_mv.items():
        values = samples if rate == record.sample_rate_hz else resample(samples, record.sample_rate_hz, rate)
        whole = int(len(values) // rate * rate)
        leads[f"ECG {name}"] = values[:whole]
    return edf_bytes(leads, rate)
