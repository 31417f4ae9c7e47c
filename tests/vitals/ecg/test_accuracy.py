"""The detector against the cardiologists' beat annotations of MIT-BIH
record 100 (lead MLII, 2,273 beats), and the same recording through every
format giving the same result."""

from __future__ import annotations

import numpy as np
import pytest
from wfdb import processing

from apps.vitals.ecg import EcgAnalysis, ecg_analyse, ecg_file_read
from tests.vitals.ecg import records

TOLERANCE_S = 0.1
MINIMUM = 0.995
SAME_WITHIN = 0.005


def _scores(analysis: EcgAnalysis) -> tuple[float, float]:
    rate = analysis.sample_rate_hz
    reference = records.record_100().beats_at(rate)
    comparison = processing.compare_annotations(reference, analysis.r_peaks, int(TOLERANCE_S * rate))
    return float(comparison.sensitivity), float(comparison.positive_predictivity)


@pytest.fixture(scope="module")
def from_wfdb() -> EcgAnalysis:
    return ecg_analyse(ecg_file_read(records.wfdb_zip()))


def test_it_matches_the_reference_beats_of_record_100(from_wfdb: EcgAnalysis) -> None:
    assert from_wfdb.lead == "MLII"
    sensitivity, predictivity = _scores(from_wfdb)
    assert sensitivity >= MINIMUM
    assert predictivity >= MINIMUM
    assert from_wfdb.beat_count == pytest.approx(2273, rel=SAME_WITHIN)


def test_it_finds_no_beats_that_are_not_there(from_wfdb: EcgAnalysis) -> None:
    """The comparison itself can fail: shifted peaks score zero."""
    shifted = EcgAnalysis(**{**from_wfdb.__dict__, "r_peaks": from_wfdb.r_peaks + int(0.3 * 360)})
    sensitivity, predictivity = _scores(shifted)
    assert sensitivity < 0.1
    assert predictivity < 0.1


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("apple_watch_csv", records.record_100_apple_csv),
        ("apple_watch_csv_decimal_commas", lambda: records.record_100_apple_csv(decimal_comma=True)),
        ("edf", records.record_100_edf),
        ("edf_500_hz", lambda: records.record_100_edf(500)),
        (
            "generic_csv",
            lambda: records.generic_csv(records.record_100().leads_mv["MLII"], 360.0),
        ),
    ],
)
def test_it_gives_the_same_result_in_every_format(from_wfdb: EcgAnalysis, name: str, make: object) -> None:
    analysis = ecg_analyse(ecg_file_read(make()))  # type: ignore[operator]
    sensitivity, predictivity = _scores(analysis)
    assert sensitivity >= MINIMUM
    assert predictivity >= MINIMUM
    assert analysis.beat_count == pytest.approx(from_wfdb.beat_count, rel=SAME_WITHIN)
    assert from_wfdb.heart_rate is not None
    assert analysis.heart_rate is not None
    assert analysis.heart_rate.mean_bpm == pytest.approx(from_wfdb.heart_rate.mean_bpm, rel=SAME_WITHIN)
    assert analysis.rr is not None
    assert from_wfdb.rr is not None
    assert analysis.rr.mean_ms == pytest.approx(from_wfdb.rr.mean_ms, rel=SAME_WITHIN)


def test_it_reads_the_apple_watch_layout_at_512_hz_in_microvolts() -> None:
    signal = ecg_file_read(records.record_100_apple_csv())
    mlii = records.record_100().leads_mv["MLII"]
    assert signal.source_format == "apple_watch_csv"
    assert signal.sample_rate_hz == 512
    assert signal.duration_s == pytest.approx(mlii.size / 360, abs=0.01)
    # µV came back as mV: the same amplitude as the original
    assert float(np.percentile(signal.samples_mv, 99)) == pytest.approx(float(np.percentile(mlii, 99)), abs=0.05)
