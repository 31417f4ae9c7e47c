"""Every file the issue lists as bad input is refused with its own code and a
message for the patient; none crashes the parser."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from django.utils import translation

from apps.vitals.ecg import MAX_FILE_BYTES, EcgFileError, EcgLimits, ecg_file_read
from tests.vitals.ecg import records

TEN_SECONDS_MV = records.record_100().leads_mv["MLII"][:3600]


def _refused(data: bytes, *, limits: EcgLimits | None = None) -> EcgFileError:
    with pytest.raises(EcgFileError) as caught:
        if limits is None:
            ecg_file_read(data)
        else:
            ecg_file_read(data, limits=limits)
    assert caught.value.message  # a sentence for the person, not just a code
    return caught.value


def _wfdb(header: str | None = None, dat: bytes | None = None, **extra: bytes) -> bytes:
    files = records.wfdb_files()
    members = {
        "100.hea": files["100.hea"] if header is None else header.encode(),
        "100.dat": files["100.dat"] if dat is None else dat,
    }
    members.update(extra)
    return records.zip_bytes(members)


HEADER = records.wfdb_files()["100.hea"].decode()


def test_it_refuses_a_zero_length_file() -> None:
    assert _refused(b"").code == "empty"


def test_it_refuses_a_file_over_the_size_limit() -> None:
    oversize = records.wfdb_zip() + b"\0" * (MAX_FILE_BYTES + 1)
    assert _refused(oversize).code == "too_large"


def test_it_reads_no_more_than_the_limit_from_a_stream() -> None:
    stream = io.BytesIO(b"sample_rate_hz=500\n" + b"0.1\n" * (MAX_FILE_BYTES // 4 + 10))
    with pytest.raises(EcgFileError) as caught:
        ecg_file_read(stream)
    assert caught.value.code == "too_large"
    assert stream.tell() == MAX_FILE_BYTES + 1


def test_it_refuses_a_truncated_wfdb_record() -> None:
    dat = records.wfdb_files()["100.dat"]
    assert _refused(_wfdb(dat=dat[: len(dat) // 2])).code == "wfdb_truncated"


def test_it_refuses_wfdb_data_longer_than_the_header_says() -> None:
    header = HEADER.replace("100 2 360 650000", "100 2 360 600000")
    assert _refused(_wfdb(header=header)).code == "wfdb_mismatch"


def test_it_refuses_wfdb_data_that_fail_the_header_checksum() -> None:
    header = HEADER.replace("995 -22131", "995 -22130")
    assert _refused(_wfdb(header=header)).code == "wfdb_mismatch"


def test_it_refuses_wfdb_data_whose_first_sample_disagrees_with_the_header() -> None:
    header = HEADER.replace("1024 995 -22131", "1024 990 -22131")
    assert _refused(_wfdb(header=header)).code == "wfdb_mismatch"


@pytest.mark.parametrize("name", ["../../../etc/passwd", "/etc/passwd", "record/100.dat", "101.dat"])
def test_it_refuses_a_header_that_names_a_file_outside_the_zip(name: str) -> None:
    header = HEADER.replace("100.dat", name)
    assert _refused(_wfdb(header=header)).code in {"wfdb_missing_data", "wfdb_invalid_header"}


def test_it_says_which_data_file_is_missing() -> None:
    error = _refused(_wfdb(header=HEADER.replace("100.dat", "101.dat")))
    assert error.code == "wfdb_missing_data"
    assert error.params["name"] == "101.dat"


def test_it_refuses_a_zip_without_a_header() -> None:
    assert _refused(records.zip_bytes({"100.dat": records.wfdb_files()["100.dat"]})).code == "wfdb_missing_header"


def test_it_refuses_a_header_alone_and_says_to_zip_it_with_its_data() -> None:
    assert _refused(records.wfdb_files()["100.hea"]).code == "wfdb_needs_zip"


def test_it_refuses_an_unreadable_wfdb_header() -> None:
    assert _refused(_wfdb(header="this is not\na header\n")).code in {"wfdb_invalid_header", "wfdb_unsupported"}


def test_it_refuses_an_edf_without_an_ecg_channel() -> None:
    rng = np.random.default_rng(1)
    edf = records.edf_bytes({"EEG Fpz-Cz": rng.normal(0, 0.05, 1000), "Resp chest": rng.normal(0, 0.05, 1000)}, 100.0)
    assert _refused(edf).code == "edf_no_ecg_channel"


def test_it_refuses_a_truncated_edf() -> None:
    edf = records.edf_bytes({"ECG II": TEN_SECONDS_MV}, 360.0)
    assert _refused(edf[:-1000]).code == "edf_truncated"


def test_it_refuses_an_edf_with_more_data_than_its_header_says() -> None:
    edf = records.edf_bytes({"ECG II": TEN_SECONDS_MV}, 360.0)
    assert _refused(edf + b"\0" * 720).code == "edf_mismatch"


def test_it_refuses_an_edf_whose_ecg_is_not_in_volts() -> None:
    edf = records.edf_bytes({"ECG II": TEN_SECONDS_MV}, 360.0, unit="degC")
    assert _refused(edf).code == "unit"


@pytest.mark.parametrize(
    "binary",
    [
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)) * 4,
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + bytes(200) + b"\x01\x02\x03",
        bytes(range(256)) * 40,
    ],
)
def test_it_refuses_a_binary_that_is_not_an_ecg_whatever_its_name(binary: bytes) -> None:
    assert _refused(binary).code == "not_ecg"


def test_it_refuses_a_zip_bomb() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("100.hea", records.wfdb_files()["100.hea"])
        with archive.open("100.dat", "w", force_zip64=True) as member:
            for _ in range(64):
                member.write(bytes(1 << 20))
    bomb = buffer.getvalue()
    assert len(bomb) < 200_000
    assert _refused(bomb).code == "zip_ratio"


def test_it_refuses_a_zip_that_unpacks_beyond_the_limit() -> None:
    limits = EcgLimits(max_zip_uncompressed_bytes=1024 * 1024)
    assert _refused(records.wfdb_zip(), limits=limits).code == "zip_too_large"


def test_it_refuses_a_zip_with_too_many_files() -> None:
    members = {f"notes/{index}.txt": b"x" for index in range(20)}
    assert _refused(_wfdb(**members)).code == "zip_too_many_files"


@pytest.mark.parametrize("name", ["../100.dat", "record/../../100.dat", "/etc/100.dat", "C:\\record\\100.dat"])
def test_it_refuses_a_zip_with_paths_outside_itself(name: str) -> None:
    files = records.wfdb_files()
    zipped = records.zip_bytes({"100.hea": files["100.hea"], name: files["100.dat"]})
    assert _refused(zipped).code == "zip_unsafe_path"


def test_it_refuses_a_damaged_zip() -> None:
    assert _refused(records.wfdb_zip()[:2000]).code == "zip_invalid"


def test_it_refuses_a_recording_shorter_than_five_seconds() -> None:
    assert _refused(records.generic_csv(TEN_SECONDS_MV[:1000], 360.0)).code == "too_short"


@pytest.mark.parametrize("rate", ["1", "50", "1000000", "nan", "-360"])
def test_it_refuses_an_absurd_sample_rate(rate: str) -> None:
    csv = records.generic_csv(TEN_SECONDS_MV, 360.0).replace(b"sample_rate_hz=360", f"sample_rate_hz={rate}".encode())
    assert _refused(csv).code in {"sample_rate", "no_sample_rate"}


def test_it_refuses_an_apple_file_with_an_absurd_sample_rate() -> None:
    csv = records.apple_csv(TEN_SECONDS_MV * 1000, sample_rate_line="Sample Rate,9 hertz")
    assert _refused(csv).code == "sample_rate"


def test_it_names_the_line_that_is_not_a_number() -> None:
    csv = records.generic_csv(TEN_SECONDS_MV, 360.0).replace(b"\n0.", b"\nabc\n0.", 1)
    error = _refused(csv)
    assert error.code == "bad_value"
    assert error.params["value"] == "abc"
    assert error.params["line"] == csv.decode().splitlines().index("abc") + 1


def test_it_refuses_values_in_the_wrong_unit() -> None:
    csv = records.generic_csv(TEN_SECONDS_MV * 1000, 360.0)  # µV labelled mV
    assert _refused(csv).code == "out_of_range"


def test_it_refuses_a_unit_that_is_not_a_voltage() -> None:
    csv = records.generic_csv(TEN_SECONDS_MV, 360.0).replace(b"unit=mV", b"unit=mmHg")
    assert _refused(csv).code == "unit"


def test_it_refuses_text_that_is_no_ecg_layout() -> None:
    assert _refused(b"date,systolic,diastolic\n2026-11-30,120,80\n").code == "unknown_format"


def test_it_refuses_in_the_users_language() -> None:
    with translation.override("zh-hans"):
        message = _refused(b"").message
    assert isinstance(message, str)
    assert message
