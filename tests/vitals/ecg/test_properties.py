"""Property tests: random bytes, random CSV-ish text and damaged copies of
good files give a signal or an EcgFileError, never another exception; and
whatever a parser accepts, the analysis takes without failing."""

from __future__ import annotations

import json
from functools import cache

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from apps.vitals.ecg import DEFAULT_LIMITS, EcgFileError, EcgSignal, ecg_analyse, ecg_file_read
from apps.vitals.ecg.formats import EDF_MAGIC, ZIP_MAGIC
from apps.vitals.ecg.recording import ecg_signal_make
from tests.vitals.ecg import records

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)


def _read_or_refuse(data: bytes) -> EcgSignal | None:
    try:
        signal = ecg_file_read(data)
    except EcgFileError as error:
        # a specific refusal: "unreadable" is the safety net for an exception
        # our own checks did not foresee, and the tests must not reach it
        assert error.code != "unreadable", repr(error.__cause__)
        assert error.message
        return None
    assert signal.samples_mv.ndim == 1
    assert np.all(np.isfinite(signal.samples_mv))
    assert signal.duration_s >= 5
    return signal


@cache
def _good_files() -> dict[str, bytes]:
    mv = records.record_100().leads_mv["MLII"][: 360 * 8]
    dat = records.wfdb_files()["100.dat"][: 360 * 8 * 3]
    header = records.wfdb_files()["100.hea"].decode().replace("650000", str(360 * 8))
    header = header.replace("995 -22131", "995 0").replace("1011 20052", "1011 0")
    return {
        "apple": records.apple_csv(mv * 1000, sample_rate_hz=360, decimal_comma=True),
        "generic": records.generic_csv(mv, 360.0),
        "edf": records.edf_bytes({"ECG II": mv}, 360.0),
        "wfdb": records.zip_bytes({"100.hea": header.encode(), "100.dat": dat}),
    }


@SETTINGS
@given(st.binary(max_size=4096))
@example(b"")
@example(ZIP_MAGIC[0])
@example(EDF_MAGIC)
@example(b"\xff\xfe")
def test_it_reads_or_refuses_random_bytes(data: bytes) -> None:
    _read_or_refuse(data)


@SETTINGS
@given(st.sampled_from([ZIP_MAGIC[0], ZIP_MAGIC[1], EDF_MAGIC, b"\xef\xbb\xbf", b"\xff\xfe"]), st.binary(max_size=4096))
def test_it_reads_or_refuses_random_bytes_behind_a_known_signature(magic: bytes, rest: bytes) -> None:
    _read_or_refuse(magic + rest)


_KEYS = st.sampled_from(
    ["sample_rate_hz", "unit", "lead", "started_at", "Sample Rate", "Unit", "Lead", "Recorded Date", "Name", "#"]
)
_VALUES = st.one_of(
    st.sampled_from(["500", "512 hertz", "0 hertz", "1e309", "nan", "mV", "µV", "uV", "V", "2026-13-45", ""]),
    st.text(max_size=20),
)
_NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32).map(repr),
    st.integers(-(10**9), 10**9).map(str),
    st.sampled_from(['"1,5"', "1,5", "-0,25;", "1.2.3", "", " ", "--1", "1e5", "0x10", "١٢"]),
)


@st.composite
def _csv_like(draw: st.DrawFn) -> bytes:
    separator = draw(st.sampled_from([",", ";", "\t", "=", ": "]))
    header = [f"{draw(_KEYS)}{separator}{draw(_VALUES)}" for _ in range(draw(st.integers(0, 8)))]
    count = draw(st.sampled_from([0, 3, 600, 3000]))
    numbers = draw(st.lists(_NUMBERS, min_size=1, max_size=20))
    body = [numbers[index % len(numbers)] for index in range(count)]
    text = "\n".join(header + draw(st.sampled_from([[""], []])) + body)
    return text.encode(draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16"])), errors="replace")


@SETTINGS
@given(_csv_like())
@example(b"sample_rate_hz=500\nunit=mV\n" + b"0.1\n" * 3000)
@example(b"Sample Rate,512 hertz\n\n" + b'"1,5"\n' * 3000)
def test_it_reads_or_refuses_random_csv(data: bytes) -> None:
    _read_or_refuse(data)


@SETTINGS
@given(
    st.sampled_from(["apple", "generic", "edf", "wfdb"]),
    st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=12),
    st.one_of(st.none(), st.floats(0.01, 1)),
)
@example("edf", [(0.392578125, 0)], None)  # a NUL inside a signal's digital minimum
def test_it_reads_or_refuses_damaged_copies_of_good_files(
    name: str, changes: list[tuple[float, int]], cut: float | None
) -> None:
    data = bytearray(_good_files()[name])
    # damage the start more often: headers are where parsers trust the input
    for where, value in changes:
        data[int(where**3 * (len(data) - 1))] = value
    if cut is not None:
        data = data[: int(len(data) * cut)]
    signal = _read_or_refuse(bytes(data))
    if signal is not None:
        json.dumps(ecg_analyse(signal).summary())


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    st.sampled_from([128.0, 250.0, 360.0, 512.0, 1000.0]),
    st.integers(5, 40),
    st.sampled_from(["noise", "flat", "spikes", "steps"]),
    st.floats(0.001, 50),
)
def test_it_analyses_whatever_a_parser_accepts(rate: float, seconds: int, kind: str, scale: float) -> None:
    rng = np.random.default_rng(seconds)
    size = int(rate * seconds)
    if kind == "noise":
        samples = rng.normal(0, scale, size)
    elif kind == "flat":
        samples = np.full(size, scale)
    elif kind == "spikes":
        samples = np.zeros(size)
        samples[rng.integers(0, size, seconds * 3)] = scale
    else:
        samples = np.repeat(rng.normal(0, scale, seconds), int(rate))[:size]
    signal = ecg_signal_make(
        samples_mv=samples, sample_rate_hz=rate, lead="II", started_at=None, source_format="test", limits=DEFAULT_LIMITS
    )
    analysis = ecg_analyse(signal)
    summary = json.loads(json.dumps(analysis.summary()))
    assert summary["beat_count"] == analysis.r_peaks.size
    assert np.all(np.diff(analysis.r_peaks) > 0)
    assert analysis.r_peaks.size == 0 or (analysis.r_peaks[0] >= 0 and analysis.r_peaks[-1] < size)
