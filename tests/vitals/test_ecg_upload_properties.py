"""The upload's checks (ecg_format_detect) on random and damaged files: a
format, or a refusal with a message — never another exception, never the
"unreadable" safety net; and the upload page answers 400, never 500."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from apps.accounts.models import User
from apps.vitals.ecg import EcgFileError, ecg_file_read, ecg_file_sniff
from apps.vitals.ecg.formats import EDF_MAGIC, ZIP_MAGIC
from apps.vitals.ecg_upload import ecg_format_detect
from apps.vitals.models import EcgRecording
from tests.vitals.ecg import records
from tests.vitals.ecg_support import (
    private_storage,  # noqa: F401  # fixture
    upload,
)

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)
GOOD = {
    "wfdb": records.wfdb_zip(),
    "edf": records.edf_bytes({"ECG II": records.record_100().leads_mv["MLII"][:3600]}, 360.0),
    "generic_csv": records.generic_csv(records.record_100().leads_mv["MLII"][:3600], 360.0),
}


def _detect_or_refuse(data: bytes) -> str | None:
    try:
        return ecg_format_detect(data)
    except EcgFileError as error:
        assert error.code != "unreadable", repr(error.__cause__)
        assert error.message
        return None


@SETTINGS
@given(st.binary(max_size=4096))
@example(b"")
@example(b"PK\x03\x04")
@example(EDF_MAGIC + b"\0" * 300)
def test_random_bytes_are_a_format_or_a_refusal(data: bytes) -> None:
    _detect_or_refuse(data)


@SETTINGS
@given(
    prefix=st.sampled_from([ZIP_MAGIC[0], EDF_MAGIC, b"\xff\xfe", b"sample_rate_hz=", b"Sample Rate,"]),
    rest=st.binary(max_size=2048),
)
def test_random_bytes_behind_a_magic_number_are_a_format_or_a_refusal(prefix: bytes, rest: bytes) -> None:
    _detect_or_refuse(prefix + rest)


@SETTINGS
@given(
    kind=st.sampled_from(sorted(GOOD)),
    cut=st.floats(min_value=0.0, max_value=1.0),
    flips=st.lists(st.integers(0, 10**7), max_size=8),
)
def test_damaged_good_files_are_a_format_or_a_refusal(kind: str, cut: float, flips: list[int]) -> None:
    data = bytearray(GOOD[kind][: max(1, int(len(GOOD[kind]) * cut))])
    for position in flips:
        data[position % len(data)] ^= 0xFF
    _detect_or_refuse(bytes(data))


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_good_files_are_told_by_their_content_whatever_their_name(kind: str) -> None:
    assert ecg_format_detect(GOOD[kind]) == kind


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_it_sniffs_the_format_the_parser_reads(kind: str) -> None:
    assert ecg_file_sniff(GOOD[kind]) == kind
    assert ecg_file_read(GOOD[kind]).source_format == kind


@pytest.mark.usefixtures("private_storage")
@settings(SETTINGS, max_examples=100)
@given(data=st.binary(min_size=1, max_size=2048))
def test_the_upload_page_refuses_random_bytes_with_400(
    data: bytes, login: Callable[[User], Client], alice: User
) -> None:
    before = EcgRecording.objects.count()
    response = upload(login(alice), data, name="ecg.csv", xhr=True)
    assert response.status_code in {200, 201, 400}
    if response.status_code == 400:
        assert response.json()["error"]
        assert EcgRecording.objects.count() == before
