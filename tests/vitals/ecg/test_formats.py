"""The format is told by the content; each format's variants are read."""

from __future__ import annotations

import datetime
import io
from pathlib import Path

import numpy as np
import pytest

from apps.vitals.ecg import ecg_file_read
from tests.vitals.ecg import records

TEN_SECONDS_MV = records.record_100().leads_mv["MLII"][:3600]


def test_it_reads_the_wfdb_mlii_lead_from_a_zip() -> None:
    signal = ecg_file_read(records.wfdb_zip())
    assert signal.source_format == "wfdb"
    assert signal.lead == "MLII"
    assert signal.sample_rate_hz == 360
    np.testing.assert_allclose(signal.samples_mv, records.record_100().leads_mv["MLII"], atol=1e-9)


def test_it_takes_the_first_wfdb_lead_without_mlii() -> None:
    files = records.wfdb_files()
    header = files["100.hea"].decode().replace(" MLII", " ECG1")
    signal = ecg_file_read(records.zip_bytes({"100.hea": header.encode(), "100.dat": files["100.dat"]}))
    assert signal.lead == "ECG1"
    np.testing.assert_allclose(signal.samples_mv[:100], records.record_100().leads_mv["MLII"][:100])


def test_it_prefers_mlii_when_it_is_not_the_first_lead() -> None:
    files = records.wfdb_files()
    header = files["100.hea"].decode().replace(" MLII", " V1").replace(" V5", " MLII")
    signal = ecg_file_read(records.zip_bytes({"100.hea": header.encode(), "100.dat": files["100.dat"]}))
    assert signal.lead == "MLII"
    np.testing.assert_allclose(signal.samples_mv[:100], records.record_100().leads_mv["V5"][:100])


def test_it_ignores_the_macos_resource_folder_in_a_zip() -> None:
    files = records.wfdb_files()
    zipped = records.zip_bytes({**files, "__MACOSX/._100.hea": b"\0\5\26\7junk"})
    assert ecg_file_read(zipped).lead == "MLII"


def test_it_reads_the_apple_watch_export() -> None:
    signal = ecg_file_read(records.apple_csv(TEN_SECONDS_MV * 1000, sample_rate_hz=360))
    assert signal.source_format == "apple_watch_csv"
    assert signal.lead == "I"
    assert signal.sample_rate_hz == 360
    assert signal.started_at == datetime.datetime(
        2026, 11, 30, 9, 15, 2, tzinfo=datetime.timezone(datetime.timedelta(hours=8))
    )
    np.testing.assert_allclose(signal.samples_mv, TEN_SECONDS_MV, atol=1e-6)


@pytest.mark.parametrize(
    ("delimiter", "decimal_comma"),
    [(",", True), (";", True), (";", False), ("\t", False)],
)
def test_it_reads_apple_exports_from_other_locales(delimiter: str, decimal_comma: bool) -> None:
    data = records.apple_csv(
        TEN_SECONDS_MV * 1000, sample_rate_hz=360, delimiter=delimiter, decimal_comma=decimal_comma
    )
    signal = ecg_file_read(data)
    assert signal.sample_rate_hz == 360
    np.testing.assert_allclose(signal.samples_mv, TEN_SECONDS_MV, atol=1e-6)


def test_it_reads_a_translated_apple_header_by_its_hertz_value() -> None:
    german = records.apple_csv(
        TEN_SECONDS_MV * 1000, delimiter=";", decimal_comma=True, sample_rate_line="Abtastrate;360 Hertz"
    )
    german = german.replace(b"Unit;", b"Einheit;").replace(b"Lead;Lead I", b"Ableitung;Ableitung I")
    signal = ecg_file_read(german)
    assert signal.sample_rate_hz == 360
    assert signal.lead == "I"
    np.testing.assert_allclose(signal.samples_mv, TEN_SECONDS_MV, atol=1e-6)


def test_it_reads_an_apple_export_with_a_bom_and_windows_line_ends() -> None:
    data = records.apple_csv(TEN_SECONDS_MV * 1000, sample_rate_hz=360).replace(b"\n", b"\r\n")
    signal = ecg_file_read(b"\xef\xbb\xbf" + data)
    np.testing.assert_allclose(signal.samples_mv, TEN_SECONDS_MV, atol=1e-6)


def test_it_reads_the_generic_csv() -> None:
    signal = ecg_file_read(records.generic_csv(TEN_SECONDS_MV, 360.0))
    assert signal.source_format == "generic_csv"
    assert signal.lead == "II"
    assert signal.started_at is not None
    assert signal.started_at.utcoffset() == datetime.timedelta(hours=8)
    np.testing.assert_allclose(signal.samples_mv, TEN_SECONDS_MV, atol=1e-4)


def test_it_reads_the_generic_csv_with_comment_headers_in_microvolts() -> None:
    lines = ["# exported by a recorder", "# sample_rate_hz: 360", "# unit: µV"]
    lines += [f"{value * 1000:.1f}" for value in TEN_SECONDS_MV]
    signal = ecg_file_read("\n".join(lines).encode())
    assert signal.sample_rate_hz == 360
    assert signal.started_at is None
    np.testing.assert_allclose(signal.samples_mv, TEN_SECONDS_MV, atol=1e-3)


def test_it_reads_edf_and_picks_the_ecg_channel_among_others() -> None:
    rng = np.random.default_rng(2)
    edf = records.edf_bytes(
        {"EEG Fpz-Cz": rng.normal(0, 0.05, 3600), "ECG II": TEN_SECONDS_MV, "Resp": rng.normal(0, 0.1, 3600)}, 360.0
    )
    signal = ecg_file_read(edf)
    assert signal.source_format == "edf"
    assert signal.lead == "II"
    np.testing.assert_allclose(signal.samples_mv, TEN_SECONDS_MV, atol=0.01)


def test_it_prefers_lead_ii_among_several_edf_ecg_channels() -> None:
    edf = records.edf_bytes({"ECG I": TEN_SECONDS_MV * 0.5, "ECG II": TEN_SECONDS_MV}, 360.0)
    assert ecg_file_read(edf).lead == "II"


def test_it_reads_edf_in_millivolts() -> None:
    edf = records.edf_bytes({"EKG": TEN_SECONDS_MV}, 360.0, unit="mV")
    np.testing.assert_allclose(ecg_file_read(edf).samples_mv, TEN_SECONDS_MV, atol=0.001)


def test_it_reads_from_a_stream_and_from_a_path(tmp_path: Path) -> None:
    data = records.generic_csv(TEN_SECONDS_MV, 360.0)
    path = tmp_path / "recording.edf"  # the name says EDF; the content decides
    path.write_bytes(data)
    assert ecg_file_read(path).source_format == "generic_csv"
    assert ecg_file_read(io.BytesIO(data)).source_format == "generic_csv"
