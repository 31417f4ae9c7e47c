"""CSV import of readings: the parser (pure), the pages (upload → preview →
confirm, all or nothing through readings_record_many), the bad-input list of
the issue (each a clear error and nothing stored), who may import, and a
property test that random text only ever meets the parser's own refusal."""

from __future__ import annotations

import codecs
import zoneinfo
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.scheduling.models import Appointment
from apps.vitals.csv_import import (
    MAX_ROWS,
    CsvRefused,
    csv_parse,
    parse_measured_at,
    template_csv,
)
from apps.vitals.models import Alert, Reading
from tests.vitals.conftest import NOW, SHANGHAI, record

Login = Callable[[User], Client]
pytestmark = pytest.mark.sqlite

QUIET = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]  # the autouse fixtures hold no state here
IMPORT = reverse("vitals:import")
CONFIRM = reverse("vitals:import_confirm")
HEADER = "measured_at,kind,systolic,diastolic,pulse,value,unit,context,note"


def parse(text: str | bytes, **kwargs: object) -> object:
    data = text.encode() if isinstance(text, str) else text
    return csv_parse(data=data, tz=SHANGHAI, **kwargs)  # type: ignore[arg-type]


def refusal(text: str | bytes) -> str:
    with pytest.raises(CsvRefused) as refused:
        parse(text)
    return refused.value.message


def bp_rows(count: int, *, start: datetime = NOW - timedelta(days=1)) -> list[str]:
    """``count`` daily blood pressures back from ``start`` (local times, no offset)."""
    return [
        f"{(start - timedelta(days=day)).astimezone(SHANGHAI):%Y-%m-%d %H:%M},blood_pressure,"
        f"{120 + day % 30},{75 + day % 10},{60 + day % 20},,,,"
        for day in range(count)
    ]


def csv_file(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


# --- The parser -----------------------------------------------------------------


def test_it_reads_its_own_template() -> None:
    parsed = parse(template_csv(glucose_unit="mmol/L"))
    assert [row.kind for row in parsed.rows] == ["blood_pressure", "glucose"]  # type: ignore[attr-defined]
    bp, glucose = parsed.rows  # type: ignore[attr-defined]
    assert bp.values == {"systolic": 128, "diastolic": 82, "pulse": 70}
    assert bp.measured_at == datetime(2025, 3, 1, 7, 30, tzinfo=SHANGHAI)
    assert (glucose.values, glucose.unit, glucose.context) == ({"glucose": Decimal("6.1")}, "mmol/L", "fasting")
    assert parsed.errors == []  # type: ignore[attr-defined]


def test_it_reads_times_in_the_users_zone_or_with_their_offset() -> None:
    assert parse_measured_at("2026-11-30 07:30", tz=SHANGHAI) == datetime(2026, 11, 30, 7, 30, tzinfo=SHANGHAI)
    assert parse_measured_at("2026/11/3 7:05", tz=SHANGHAI) == datetime(2026, 11, 3, 7, 5, tzinfo=SHANGHAI)
    assert parse_measured_at("2026-11-30T07:30:15", tz=SHANGHAI) == datetime(2026, 11, 30, 7, 30, 15, tzinfo=SHANGHAI)
    assert parse_measured_at("2026-11-30T07:30:00Z", tz=SHANGHAI) == datetime(2026, 11, 30, 7, 30, tzinfo=UTC)
    moment = parse_measured_at("2026-11-30T07:30:00-05:00", tz=SHANGHAI)
    assert moment is not None and moment.astimezone(UTC) == datetime(2026, 11, 30, 12, 30, tzinfo=UTC)
    for bad in (
        "2026-11-30",
        "30/11/2026 07:30",
        "2026-02-30 07:00",
        "2026-11-30 25:00",
        "yesterday",
        "2026-11-30 07:30+25:00",
    ):
        assert parse_measured_at(bad, tz=SHANGHAI) is None, bad


def test_it_takes_a_bom() -> None:
    parsed = parse(codecs.BOM_UTF8 + csv_file(*bp_rows(2)).encode())
    assert len(parsed.rows) == 2 and parsed.errors == []  # type: ignore[attr-defined]


def test_it_reads_decimal_commas_with_semicolons_or_in_quotes() -> None:
    semicolons = "measured_at;kind;value;unit;context\n2026-11-30 07:00;glucose;7,2;mmol/L;fasting\n"
    [row] = parse(semicolons).rows  # type: ignore[attr-defined]
    assert row.values == {"glucose": Decimal("7.2")}
    quoted = csv_file('2026-11-30 07:00,temperature,,,,"37,8",°C,,')
    [row] = parse(quoted).rows  # type: ignore[attr-defined]
    assert row.values == {"temperature": Decimal("37.8")}


def test_an_unquoted_decimal_comma_is_a_row_error_that_says_how_to_fix_it() -> None:
    parsed = parse(csv_file("2026-11-30 07:00,temperature,,,,37,8,°C,,"))
    [error] = parsed.errors  # type: ignore[attr-defined]
    assert error.row == 2 and error.column == ""
    assert "decimal comma" in error.message and "semicolon" in error.message
    assert parsed.rows == []  # type: ignore[attr-defined]


def test_it_reads_each_rows_glucose_unit() -> None:
    parsed = parse(
        csv_file(
            "2026-11-30 07:00,glucose,,,,126,mg/dL,fasting,",
            "2026-11-30 12:00,glucose,,,,7.0,mmol/L,after_meal,",
            "2026-11-30 18:00,glucose,,,,6.5,,before_meal,",
        ),
        glucose_unit="mg/dL",
    )
    assert [(row.values["glucose"], row.unit) for row in parsed.rows] == [  # type: ignore[attr-defined]
        (Decimal(126), "mg/dL"),
        (Decimal("7.0"), "mmol/L"),
        (Decimal("6.5"), "mg/dL"),  # no unit: the user's own (the service refuses 6.5 mg/dL as implausible)
    ]


def test_text_in_a_number_is_an_error_in_its_row_and_column() -> None:
    parsed = parse(
        csv_file(*bp_rows(1), "2026-11-29 07:00,blood_pressure,abc,80,,,,,", "2026-11-28 07:00,spo2,,,,97%,,,")
    )
    assert [(e.row, e.column, e.message) for e in parsed.errors] == [  # type: ignore[attr-defined]
        (3, "systolic", "“abc” is not a number."),
        (4, "value", "“97%” is not a number."),
    ]
    assert len(parsed.rows) == 1  # type: ignore[attr-defined]


def test_row_errors_name_the_column_and_say_what_is_expected() -> None:
    parsed = parse(
        csv_file(
            "2026-11-30,blood_pressure,120,80,,,,,",
            "2026-11-30 07:00,cholesterol,,,,5,,,",
            "2026-11-30 07:00,glucose,,,,6.1,mmol/L,,",
            "2026-11-30 07:00,temperature,,,,99.5,°F,,",
            "2026-11-30 07:00,spo2,97,,,,,,",
            "2026-11-30 07:00,blood_pressure,120,,,,,,",
        )
    )
    by_row = {(e.row, e.column): e.message for e in parsed.errors}  # type: ignore[attr-defined]
    assert "is not a date and time: write it like 2026-12-01 07:30" in by_row[(2, "measured_at")]
    assert "Unknown kind “cholesterol”. Use one of: blood_pressure, glucose" in by_row[(3, "kind")]
    assert "Say when glucose was measured: fasting, before_meal" in by_row[(4, "context")]
    assert "read in °C" in by_row[(5, "unit")]
    assert "Only blood pressure uses this column" in by_row[(6, "systolic")]
    assert by_row[(6, "value")] == "Enter a value."
    assert by_row[(7, "diastolic")] == "Enter a value."
    assert parsed.rows == []  # type: ignore[attr-defined]


def test_wrong_or_missing_columns_refuse_the_file() -> None:
    assert "Unknown columns: systolc" in refusal("measured_at,kind,systolc,diastolic\n2026-11-30 07:00,bp,120,80\n")
    assert "Missing columns: kind" in refusal("measured_at,value\n2026-11-30 07:00,97\n")
    assert "The first row must be the column names" in refusal("2026-11-30 07:00,blood_pressure,120,80\n")
    assert "appear twice: value" in refusal("measured_at,kind,value,value\n")
    assert "no column for values" in refusal("measured_at,kind,note\n2026-11-30 07:00,spo2,hi\n")


def test_an_empty_file_is_refused() -> None:
    for empty in (b"", codecs.BOM_UTF8, b"\r\n\r\n", b" , , \n"):
        assert refusal(empty) == "The file is empty.", empty
    assert refusal(HEADER + "\n,,,,,,,,\n") == "The file has no readings, only a header."


def test_more_than_10000_rows_are_refused_whole() -> None:
    rows = bp_rows(1) * (MAX_ROWS + 1)
    message = refusal(csv_file(*rows))
    assert "10001 readings; at most 10000 can be imported at once" in message
    assert len(parse(csv_file(*bp_rows(1) * MAX_ROWS)).rows) == MAX_ROWS  # type: ignore[attr-defined]


def test_binary_and_unreadable_files_are_refused() -> None:
    assert refusal(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR") == "This is not a CSV text file."
    assert "Save it as “CSV UTF-8”" in refusal(b"\xff\xfe\x00\xd8")  # a lone UTF-16 surrogate
    assert "larger than 5 MB" in refusal(b"x" * (5 * 1024 * 1024 + 1))


def test_it_reads_chinese_excel_files_gb18030_and_utf16() -> None:
    text = csv_file("2026-11-30 07:00,spo2,,,,97,%,,早上")
    [row] = parse(text.encode("gb18030")).rows  # type: ignore[attr-defined]
    assert row.note == "早上"
    tabbed = text.replace(",", "\t")
    [row] = parse(tabbed.encode("utf-16")).rows  # type: ignore[attr-defined]
    assert (row.values, row.note) == ({"spo2": 97}, "早上")


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400))
@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=QUIET)
def test_random_text_meets_only_the_parsers_own_refusal(text: str) -> None:
    for data in (text.encode(), (HEADER + "\n" + text).encode(), ("measured_at;kind;value\n" + text).encode("utf-16")):
        try:
            parse(data)
        except CsvRefused as refused:
            assert refused.message


_cell = st.one_of(
    st.sampled_from(["", "blood_pressure", "glucose", "spo2", "7,2", "120", "mg/dL", "fasting", "2026-11-30 07:00"]),
    st.text(max_size=12),
)


@given(st.lists(st.lists(_cell, max_size=11), max_size=20), st.sampled_from([",", ";", "\t"]))
@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=QUIET)
def test_random_rows_meet_only_the_parsers_own_refusal(rows: list[list[str]], delimiter: str) -> None:
    text = "\n".join([HEADER.replace(",", delimiter), *(delimiter.join(row) for row in rows)])
    try:
        parsed = parse(text)
    except CsvRefused as refused:
        assert refused.message
    else:
        assert len(parsed.rows) + len({e.row for e in parsed.errors}) <= parsed.total  # type: ignore[attr-defined]


@given(st.binary(max_size=300))
@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=QUIET)
def test_random_bytes_meet_only_the_parsers_own_refusal(data: bytes) -> None:
    try:
        parse(data)
    except CsvRefused as refused:
        assert refused.message


# --- The pages ------------------------------------------------------------------


def upload(client: Client, text: str | bytes, url: str = IMPORT, name: str = "readings.csv") -> object:
    data = text.encode() if isinstance(text, str) else text
    return client.post(url, {"file": SimpleUploadedFile(name, data, content_type="text/csv")})


def token_of(page: str) -> str:
    marker = 'name="token" value="'
    assert marker in page, page
    return page.split(marker, 1)[1].split('"', 1)[0]


def kept_uploads() -> list[Path]:
    directory = Path(settings.VAR_DIR) / "vitals-import"
    return sorted(directory.iterdir()) if directory.exists() else []


@pytest.fixture(autouse=True)
def _own_var_dir(settings: Any, tmp_path: Path) -> None:
    """Kept uploads go to this test's own directory."""
    settings.VAR_DIR = tmp_path


def test_the_template_is_a_download_with_the_users_glucose_unit(login: Login, alice: User) -> None:
    response = login(alice).get(reverse("vitals:import_template"))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    body = response.content
    assert body.startswith(codecs.BOM_UTF8)
    lines = body.decode("utf-8-sig").splitlines()
    assert lines[0] == HEADER and len(lines) == 3
    assert ",6.1,mmol/L,fasting," in lines[2]
    alice.patient_profile.glucose_unit = "mg/dL"
    alice.patient_profile.save()
    assert b",110,mg/dL,fasting," in login(alice).get(reverse("vitals:import_template")).content


def test_the_import_page_explains_the_format(login: Login, alice: User) -> None:
    page = login(alice).get(IMPORT).content.decode()
    assert 'enctype="multipart/form-data"' in page
    assert reverse("vitals:import_template") in page
    assert "measured_at" in page and "before_meal" in page and "10000" in page
    assert "<script>" not in page


def test_alice_imports_a_few_hundred_readings(login: Login, alice: User, appointment: Appointment) -> None:
    client = login(alice)
    glucose_cells = ("110,mg/dL", '"6,4",mmol/L')  # mixed units, a decimal comma in quotes
    rows = [
        *bp_rows(250),
        *[
            f"{(NOW - timedelta(days=day, hours=2)).astimezone(SHANGHAI):%Y-%m-%d %H:%M},glucose,,,,"
            f"{glucose_cells[day % 2 == 0]},fasting,"
            for day in range(50)
        ],
    ]
    text = csv_file(*rows).replace("\n", "\r\n")
    preview = upload(client, text)
    page = preview.content.decode()  # type: ignore[attr-defined]
    assert preview.status_code == 200  # type: ignore[attr-defined]
    assert "300 new readings" in page and "Import 300 readings" in page
    assert "Blood pressure: 250" in page and "Blood glucose: 50" in page
    assert Reading.objects.count() == 0  # nothing before the confirmation
    assert len(kept_uploads()) == 1
    kept = kept_uploads()[0]
    assert kept.stat().st_mode & 0o777 == 0o600

    response = client.post(CONFIRM, {"token": token_of(page)})
    assert response.status_code == 302
    assert response["Location"] == reverse("vitals:mine") + "?period=365"
    assert Reading.objects.count() == 300
    assert set(Reading.objects.values_list("source", "entered_by", "patient").distinct()) == {
        ("csv", alice.pk, alice.pk)
    }
    glucose = sorted(Reading.objects.filter(kind="glucose").values_list("values__glucose", flat=True))
    assert glucose[0] == 6.11 and glucose[-1] == 6.4  # 110 mg/dL = 6.11 mmol/L, 6,4 mmol/L as it was
    assert AuditEvent.objects.filter(object_type="reading", action="create", actor=alice).count() == 300
    assert not kept_uploads()
    after = client.get(response["Location"]).content.decode()
    assert "Imported 300 readings." in after


def test_duplicates_already_stored_are_reported_not_refused(login: Login, alice: User) -> None:
    record(alice, measured_at=NOW - timedelta(days=2), values={"systolic": 121, "diastolic": 76, "pulse": 61})
    client = login(alice)
    rows = [*bp_rows(3), bp_rows(3)[0]]  # the second row is the reading Alice entered; the first comes twice
    page = upload(client, csv_file(*rows)).content.decode()  # type: ignore[attr-defined]
    assert "2 new readings" in page
    assert "1 already saved (skipped)" in page
    assert "1 repeated in the file (saved once)" in page
    assert "problem" not in page
    response = client.post(CONFIRM, {"token": token_of(page)}, follow=True)
    assert "Imported 2 readings. 2 were already saved." in response.content.decode()
    assert Reading.objects.count() == 3


def test_a_file_already_imported_has_nothing_new(login: Login, alice: User) -> None:
    client = login(alice)
    client.post(CONFIRM, {"token": token_of(upload(client, csv_file(*bp_rows(3))).content.decode())})  # type: ignore[attr-defined]
    page = upload(client, csv_file(*bp_rows(3))).content.decode()  # type: ignore[attr-defined]
    assert "Every reading in this file was already saved" in page
    assert 'name="token"' not in page
    assert Reading.objects.count() == 3


def test_an_urgent_reading_in_a_file_alerts_her_doctors(login: Login, alice: User, appointment: Appointment) -> None:
    client = login(alice)
    page = upload(client, csv_file("2026-11-30 07:00,blood_pressure,190,110,80,,,,")).content.decode()  # type: ignore[attr-defined]
    response = client.post(CONFIRM, {"token": token_of(page)}, follow=True)
    assert "doctors have been alerted" in response.content.decode()
    assert Alert.objects.filter(patient=alice, severity="critical").count() == 1


# The bad-input list: each a clear error and nothing stored.
BAD_FILES = {
    "wrong columns": (
        csv_file("2026-11-30 07:00,bp,120,80", header="measured_at,kind,upper,lower"),
        "Unknown columns: upper, lower",
    ),
    "no header": ("2026-11-30 07:00,blood_pressure,120,80\n", "The first row must be the column names"),
    "missing column": (
        csv_file("2026-11-30 07:00,120,80", header="measured_at,systolic,diastolic"),
        "Missing columns: kind",
    ),
    "text in numbers": (
        csv_file("2026-11-30 07:00,blood_pressure,one twenty,80,,,,,"),
        "“one twenty” is not a number.",
    ),
    "unquoted decimal comma": (
        csv_file("2026-11-30 07:00,glucose,,,,7,2,mmol/L,fasting,"),
        "A decimal comma (7,2) needs quotes",
    ),
    "implausible in its unit": (
        csv_file("2026-11-30 07:00,glucose,,,,7.2,mg/dL,fasting,"),
        "Glucose must be between 9 and 900 mg/dL.",
    ),
    "mixed units, one wrong": (
        csv_file("2026-11-30 07:00,glucose,,,,126,mg/dL,fasting,", "2026-11-30 12:00,glucose,,,,7.1,mmol/dL,random,"),
        "For glucose the unit is mmol/L or mg/dL.",
    ),
    "empty file": ("", "The file is empty."),
    "BOM and nothing else": (codecs.BOM_UTF8, "The file is empty."),
    "10,001 rows": (csv_file(*bp_rows(1) * (MAX_ROWS + 1)), "at most 10000 can be imported at once"),
    "in the future": (csv_file("2026-12-01 09:00,spo2,,,,97,,,"), "cannot be in the future"),
    "systolic below diastolic": (
        csv_file("2026-11-30 07:00,blood_pressure,80,90,,,,,"),
        "must be higher than the lower",
    ),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_input_gets_a_clear_error_and_stores_nothing(login: Login, alice: User, case: str) -> None:
    text, message = BAD_FILES[case]
    client = login(alice)
    response = upload(client, codecs.BOM_UTF8 + text.encode() if isinstance(text, str) else text)
    page = response.content.decode()  # type: ignore[attr-defined]
    assert response.status_code in {200, 400}  # type: ignore[attr-defined]
    assert message in page, case
    assert 'name="token"' not in page and "data-import-confirm" not in page
    assert Reading.objects.count() == 0
    assert not kept_uploads()


def test_row_errors_are_listed_with_their_row_and_column(login: Login, alice: User) -> None:
    rows = [*bp_rows(2), "2026-11-30 07:00,spo2,,,,101,,,", "2026-11-30 08:00,heart_rate,,,,fast,,,"]
    page = upload(login(alice), csv_file(*rows)).content.decode()  # type: ignore[attr-defined]
    assert "<td>4</td><td>value</td><td>SpO2 must be between 50 and 100 %.</td>" in page
    assert "<td>5</td><td>value</td><td>“fast” is not a number.</td>" in page
    assert "2 problems" in page
    assert "Nothing can be imported until every row is right" in page


def test_errors_come_in_the_users_language(login: Login, alice: User) -> None:
    alice.language = "zh-hans"
    alice.save()
    rows = ["2026-11-30 07:00,spo2,,,,97,,,", "2026-11-30 07:00,spo2,,,,30,,,", "2026-12-01 09:00,spo2,,,,97,,,"]
    page = upload(login(alice), csv_file(*rows)).content.decode()  # type: ignore[attr-defined]
    assert "必须在 50 到 100 % 之间" in page  # the service's messages, from the zh-hans catalog
    assert "测量时间不能在将来" in page


def test_a_forged_expired_or_reused_token_imports_nothing(login: Login, alice: User, mallory: User) -> None:
    from apps.accounts.services import consent_give

    client = login(alice)
    page = upload(client, csv_file(*bp_rows(2))).content.decode()  # type: ignore[attr-defined]
    token = token_of(page)
    assert "This preview has expired" in client.post(CONFIRM, {"token": "nonsense"}).content.decode()
    assert "This preview has expired" in client.post(CONFIRM, {"token": token[:-2] + "xx"}).content.decode()
    consent_give(patient=mallory, given_by=mallory)
    other = Client()
    other.force_login(mallory)
    assert "This preview has expired" in other.post(CONFIRM, {"token": token}).content.decode()
    assert Reading.objects.count() == 0
    import time_machine

    with time_machine.travel(NOW + timedelta(hours=1, minutes=1), tick=False):
        assert "This preview has expired" in client.post(CONFIRM, {"token": token}).content.decode()
    assert Reading.objects.count() == 0
    client.post(CONFIRM, {"token": token})
    assert Reading.objects.count() == 2
    assert "This preview has expired" in client.post(CONFIRM, {"token": token}).content.decode()  # used once
    assert Reading.objects.count() == 2


def test_consent_withdrawn_before_the_confirmation_stores_nothing(
    login: Login, alice: User, bob: User, appointment: Appointment
) -> None:
    from apps.accounts.selectors import consent_active

    client = login(bob)
    url = reverse("vitals:staff_import", args=[alice.pk])
    page = upload(client, csv_file(*bp_rows(5)), url=url).content.decode()  # type: ignore[attr-defined]
    consent = consent_active(patient=alice)
    assert consent is not None
    consent.withdrawn_at = NOW
    consent.save()
    response = client.post(reverse("vitals:staff_import_confirm", args=[alice.pk]), {"token": token_of(page)})
    assert response.status_code == 400
    assert "has not consented" in response.content.decode()
    assert Reading.objects.count() == 0


# --- Who may import --------------------------------------------------------------


def _staff_urls(alice: User) -> list[str]:
    return [reverse("vitals:staff_import", args=[alice.pk]), reverse("vitals:staff_import_confirm", args=[alice.pk])]


def test_anonymous_visitors_are_sent_to_sign_in(client: Client, alice: User) -> None:
    for url in [IMPORT, CONFIRM, reverse("vitals:import_template"), *_staff_urls(alice)]:
        for response in (client.get(url), upload(client, csv_file(*bp_rows(1)), url=url)):
            assert response.status_code == 302, url  # type: ignore[attr-defined]
            assert response["Location"].startswith(reverse("account_login")), url  # type: ignore[index]
    assert Reading.objects.count() == 0


@pytest.mark.usefixtures("appointment")
def test_mallory_and_dave_cannot_import_for_alice(login: Login, alice: User, mallory: User, dave: User) -> None:
    for outsider in (mallory, dave):
        client = login(outsider)
        for url in _staff_urls(alice):
            assert client.get(url).status_code in {404, 405}, (outsider, url)
            assert upload(client, csv_file(*bp_rows(1)), url=url).status_code == 404, (outsider, url)  # type: ignore[attr-defined]
        client.logout()
    assert Reading.objects.count() == 0
    assert not kept_uploads()
    assert AuditEvent.objects.filter(action="access_denied", actor=dave, object_type="readings").exists()


def test_a_patient_imports_only_for_herself(login: Login, alice: User, mallory: User) -> None:
    from apps.accounts.services import consent_give

    assert login(mallory).get(IMPORT)["Location"] == reverse("accounts:consent")  # consent first
    consent_give(patient=mallory, given_by=mallory)
    client = login(mallory)
    client.post(CONFIRM, {"token": token_of(upload(client, csv_file(*bp_rows(2))).content.decode())})  # type: ignore[attr-defined]
    assert set(Reading.objects.values_list("patient", flat=True)) == {mallory.pk}


def test_bob_imports_for_alice_and_lands_on_her_readings(
    login: Login, alice: User, bob: User, appointment: Appointment
) -> None:
    client = login(bob)
    url = reverse("vitals:staff_import", args=[alice.pk])
    page = client.get(url).content.decode()
    assert "For Alice" in page
    page = upload(client, csv_file(*bp_rows(3)), url=url).content.decode()  # type: ignore[attr-defined]
    response = client.post(reverse("vitals:staff_import_confirm", args=[alice.pk]), {"token": token_of(page)})
    assert response["Location"] == reverse("vitals:patient_readings", args=[alice.pk]) + "?period=7"
    assert set(Reading.objects.values_list("source", "entered_by", "patient").distinct()) == {("csv", bob.pk, alice.pk)}


def test_carol_imports_for_a_patient_of_her_clinic_and_reads_nothing_back(
    login: Login, alice: User, carol: User, appointment: Appointment
) -> None:
    client = login(carol)
    url = reverse("vitals:staff_import", args=[alice.pk])
    page = upload(client, csv_file(*bp_rows(3)), url=url).content.decode()  # type: ignore[attr-defined]
    response = client.post(reverse("vitals:staff_import_confirm", args=[alice.pk]), {"token": token_of(page)})
    assert response["Location"] == reverse("vitals:patients")
    assert Reading.objects.filter(patient=alice, entered_by=carol, source="csv").count() == 3


def test_a_token_for_one_patient_does_not_import_for_another(
    login: Login, alice: User, bob: User, mallory: User, appointment: Appointment, clinic: object
) -> None:
    from apps.accounts.services import consent_give

    consent_give(patient=mallory, given_by=mallory)
    Appointment.objects.create(
        patient=mallory,
        doctor=bob,
        clinic=clinic,  # type: ignore[misc]
        starts_at=NOW,
        ends_at=NOW + timedelta(minutes=30),
        mode="video",
        booked_by=bob,
    )
    client = login(bob)
    page = upload(client, csv_file(*bp_rows(2)), url=reverse("vitals:staff_import", args=[alice.pk])).content.decode()  # type: ignore[attr-defined]
    response = client.post(reverse("vitals:staff_import_confirm", args=[mallory.pk]), {"token": token_of(page)})
    assert "This preview has expired" in response.content.decode()
    assert Reading.objects.count() == 0


def test_naive_times_are_in_the_importers_zone(login: Login, alice: User) -> None:
    User.objects.filter(pk=alice.pk).update(timezone="America/New_York")
    client = login(alice)
    client.post(
        CONFIRM, {"token": token_of(upload(client, csv_file("2026-11-30 07:00,spo2,,,,97,,,")).content.decode())}
    )  # type: ignore[attr-defined]
    new_york = zoneinfo.ZoneInfo("America/New_York")
    assert Reading.objects.get().measured_at == datetime(2026, 11, 30, 7, 0, tzinfo=new_york)
