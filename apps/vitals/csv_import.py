"""Readings from a CSV file: the format of docs/vitals.md ("CSV import"),
read into rows ready for ``readings_record_many``. Pure: bytes in, rows
and per-row errors out; nothing here touches the database.

The file as a whole is refused with ``CsvRefused`` (empty, not text, too
big, more than ``MAX_ROWS`` rows, wrong columns); a row that cannot be read
(a date, a kind, text in a number, a unit) gets a ``RowError`` and the rows
that can are returned for the service to check (plausibility, the future,
consent, duplicates). ``csv_parse`` raises nothing but ``CsvRefused``.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal

from django.utils.translation import gettext as _

from apps.vitals.kinds import (
    BLOOD_PRESSURE,
    GLUCOSE,
    GLUCOSE_UNITS,
    KINDS,
    MG_DL,
    MMOL_L,
    GlucoseContext,
    Kind,
    parse_number,
)

MAX_ROWS = 10_000
MAX_BYTES = 5 * 1024 * 1024
MAX_NUMBER_CHARS = 12

COLUMNS = ("measured_at", "kind", "systolic", "diastolic", "pulse", "value", "unit", "context", "note")
REQUIRED_COLUMNS = ("measured_at", "kind")
VALUE_COLUMNS = ("systolic", "diastolic", "pulse", "value")
BP_COLUMNS = ("systolic", "diastolic", "pulse")
DELIMITERS = (",", ";", "\t")

KIND_ALIASES = {"bp": "blood_pressure", "hr": "heart_rate", "temp": "temperature", "sp_o2": "spo2"}

# What people write for the one unit each kind (but glucose) is read in.
UNIT_SPELLINGS: dict[str, frozenset[str]] = {
    "blood_pressure": frozenset({"mmhg", "mm[hg]", "mm hg"}),
    "heart_rate": frozenset({"/min", "bpm", "beats/min", "次/分", "次/分钟"}),
    "spo2": frozenset({"%"}),
    "temperature": frozenset({"°c", "c", "cel", "℃", "degc"}),
    "weight": frozenset({"kg"}),
    "height": frozenset({"cm"}),
}
GLUCOSE_SPELLINGS = {"mmol/l": MMOL_L, "mg/dl": MG_DL}

_DATETIME = re.compile(
    r"^(?P<y>\d{4})[-/](?P<m>\d{1,2})[-/](?P<d>\d{1,2})[ T]+(?P<H>\d{1,2}):(?P<M>\d{2})"
    r"(?::(?P<S>\d{2})(?:[.,]\d{1,6})?)?\s*(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)?$",
    re.IGNORECASE,
)


class CsvRefused(Exception):
    """The file as a whole cannot be imported; ``message`` says why, in the
    user's language. Nothing is stored."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class RowError:
    row: int  # as the spreadsheet numbers it: the header is row 1
    column: str  # "" for the row as a whole
    message: str


@dataclass(frozen=True)
class CsvRow:
    """One reading as read from the file; values in ``unit`` (glucose only)."""

    row: int
    kind: str
    values: dict[str, Decimal]
    measured_at: datetime
    unit: str = ""
    context: str = ""
    note: str = ""


@dataclass
class CsvParsed:
    rows: list[CsvRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    delimiter: str = ","
    total: int = 0  # data rows in the file (blank lines not counted)


def field_column(*, kind: str, name: str) -> str:
    """The CSV column a kind's value is read from ("" for the row as a
    whole, the same name for the other columns)."""
    if name in KINDS.get(kind, BLOOD_PRESSURE).field_names and kind != BLOOD_PRESSURE.code:
        return "value"
    return "" if name == "__all__" else name


def _decode(data: bytes) -> str:
    """UTF-8 (with or without a BOM), UTF-16 with a BOM (Excel's "Unicode
    text"), else GB18030 (Excel's CSV on a Chinese Windows)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise CsvRefused(_("The file is not readable text. Save it as “CSV UTF-8”.")) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise CsvRefused(_("The file is not readable text. Save it as “CSV UTF-8”.")) from None


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line
    return ""


def _delimiter(header_line: str) -> str:
    """The separator is the one the header uses (it has no numbers, so no
    decimal commas): a comma, a semicolon or a tab."""
    counts = {delimiter: header_line.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def _header(record: list[str]) -> dict[str, int]:
    names = [name.strip().lower().replace(" ", "_") for name in record]
    if not any(name in COLUMNS for name in names):
        raise CsvRefused(
            _("The first row must be the column names, e.g. %(header)s (download the template).")
            % {"header": ",".join(COLUMNS)}
        )
    unknown = [name for name in names if name and name not in COLUMNS]
    if unknown:
        raise CsvRefused(
            _("Unknown columns: %(unknown)s. The columns are: %(columns)s (download the template).")
            % {"unknown": ", ".join(unknown[:10]), "columns": ", ".join(COLUMNS)}
        )
    repeated = sorted({name for name in names if name and names.count(name) > 1})
    if repeated:
        raise CsvRefused(_("These columns appear twice: %(columns)s.") % {"columns": ", ".join(repeated)})
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise CsvRefused(
            _(
                "Missing columns: %(missing)s. The first row must be the header, e.g. %(header)s "
                "(download the template)."
            )
            % {"missing": ", ".join(missing), "header": ",".join(COLUMNS)}
        )
    if not any(name in names for name in VALUE_COLUMNS):
        raise CsvRefused(
            _("The file has no column for values: add %(columns)s.") % {"columns": ", ".join(VALUE_COLUMNS)}
        )
    return {name: index for index, name in enumerate(names) if name}


def parse_measured_at(text: str, *, tz: tzinfo) -> datetime | None:
    """ISO 8601 (with an offset or Z), or ``YYYY-MM-DD HH:MM[:SS]`` (also
    with ``/`` and one-digit month, day or hour) in ``tz``. None if it is
    neither or not a real date."""
    match = _DATETIME.match(text.strip())
    if match is None:
        return None
    parts = match.groupdict()
    offset = parts["tz"]
    zone: tzinfo = tz
    if offset:
        if offset.upper() == "Z":
            zone = UTC
        else:
            digits = offset[1:].replace(":", "")
            hours, minutes = int(digits[:2]), int(digits[2:] or 0)
            if hours > 23 or minutes > 59:
                return None
            sign = 1 if offset[0] == "+" else -1
            zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        return datetime(
            int(parts["y"]),
            int(parts["m"]),
            int(parts["d"]),
            int(parts["H"]),
            int(parts["M"]),
            int(parts["S"] or 0),
            tzinfo=zone,
        )
    except ValueError:
        return None


def _kind(text: str) -> Kind | None:
    code = text.strip().lower().replace(" ", "_").replace("-", "_")
    return KINDS.get(KIND_ALIASES.get(code, code))


def _number(text: str) -> Decimal | None:
    if len(text) > MAX_NUMBER_CHARS:
        return None
    return parse_number(text)


class _Row:
    """Reads one record against the header, collecting its errors."""

    def __init__(self, *, number: int, record: list[str], columns: dict[str, int], width: int) -> None:
        self.number = number
        self.record = record
        self.columns = columns
        self.width = width  # the header's cells, named or not
        self.errors: list[RowError] = []

    def get(self, name: str) -> str:
        index = self.columns.get(name)
        if index is None or index >= len(self.record):
            return ""
        return self.record[index].strip()

    def error(self, column: str, message: str) -> None:
        self.errors.append(RowError(row=self.number, column=column, message=message))


def _read_values(row: _Row, kind: Kind) -> dict[str, Decimal]:
    values: dict[str, Decimal] = {}
    if kind is BLOOD_PRESSURE:
        if row.get("value"):
            row.error("value", _("Leave “value” empty for blood pressure: use systolic, diastolic and pulse."))
        wanted = [(name, name) for name in BP_COLUMNS]
    else:
        for name in BP_COLUMNS:
            if row.get(name):
                row.error(name, _("Only blood pressure uses this column: put the value in “value”."))
        wanted = [(kind.fields[0].name, "value")]
    for name, column in wanted:
        text = row.get(column)
        if not text:
            if kind.field(name).required:
                if column not in row.columns:
                    row.error(column, _("The file has no “%(column)s” column.") % {"column": column})
                else:
                    row.error(column, _("Enter a value."))
            continue
        number = _number(text)
        if number is None:
            row.error(column, _("“%(text)s” is not a number.") % {"text": text[:20]})
            continue
        values[name] = number
    return values


def _read_unit(row: _Row, kind: Kind, glucose_unit: str) -> str:
    text = row.get("unit")
    if kind is GLUCOSE:
        if not text:
            return glucose_unit
        unit = GLUCOSE_SPELLINGS.get(text.lower())
        if unit is None:
            row.error("unit", _("For glucose the unit is mmol/L or mg/dL."))
            return glucose_unit
        return unit
    if text and text.lower() not in UNIT_SPELLINGS.get(kind.code, frozenset()):
        expected = kind.fields[0].unit_label if kind is not BLOOD_PRESSURE else "mmHg"
        row.error(
            "unit",
            _("%(kind)s is read in %(unit)s; convert the value or leave the unit empty.")
            % {"kind": kind.label, "unit": expected},
        )
    return ""


def _read_context(row: _Row, kind: Kind) -> str:
    text = row.get("context").lower().replace(" ", "_").replace("-", "_")
    if kind.has_context:
        if text not in GlucoseContext.VALUES:
            row.error(
                "context",
                _("Say when glucose was measured: %(choices)s.")
                % {"choices": ", ".join(code for code, _label in GlucoseContext.CHOICES)},
            )
        return text
    if text:
        row.error("context", _("Only glucose has a context; leave it empty."))
    return ""


def _read_row(row: _Row, *, tz: tzinfo, glucose_unit: str) -> CsvRow | None:
    if len(row.record) > row.width:
        row.error(
            "",
            _(
                'This row has more cells than the header. A decimal comma (7,2) needs quotes ("7,2") or a '
                "semicolon (;) as the separator."
            ),
        )
        return None
    measured_text = row.get("measured_at")
    measured_at = parse_measured_at(measured_text, tz=tz) if measured_text else None
    if not measured_text:
        row.error("measured_at", _("Enter the date and time of the measurement."))
    elif measured_at is None:
        row.error(
            "measured_at",
            _("“%(text)s” is not a date and time: write it like 2026-12-01 07:30.") % {"text": measured_text[:40]},
        )
    kind_text = row.get("kind")
    kind = _kind(kind_text) if kind_text else None
    if kind is None:
        row.error(
            "kind",
            _("Unknown kind “%(text)s”. Use one of: %(kinds)s.") % {"text": kind_text[:40], "kinds": ", ".join(KINDS)},
        )
        return None
    values = _read_values(row, kind)
    unit = _read_unit(row, kind, glucose_unit)
    context = _read_context(row, kind)
    if row.errors or measured_at is None:
        return None
    return CsvRow(
        row=row.number,
        kind=kind.code,
        values=values,
        measured_at=measured_at,
        unit=unit,
        context=context,
        note=row.get("note"),
    )


def csv_parse(*, data: bytes, tz: tzinfo, glucose_unit: str = MMOL_L, max_rows: int = MAX_ROWS) -> CsvParsed:
    """Read a readings CSV. Times without an offset are in ``tz``; glucose
    rows without a unit are in ``glucose_unit``. Raises CsvRefused."""
    if glucose_unit not in GLUCOSE_UNITS:
        glucose_unit = MMOL_L
    if len(data) > MAX_BYTES:
        raise CsvRefused(_("The file is larger than %(mb)s MB.") % {"mb": MAX_BYTES // (1024 * 1024)})
    text = _decode(data)
    if "\x00" in text:
        raise CsvRefused(_("This is not a CSV text file."))
    header_line = _first_line(text)
    if not header_line.strip(" \t,;\ufeff"):
        raise CsvRefused(_("The file is empty."))
    delimiter = _delimiter(header_line)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    parsed = CsvParsed(delimiter=delimiter)
    columns: dict[str, int] | None = None
    width = 0
    try:
        for index, record in enumerate(reader):
            if not any(cell.strip() for cell in record):
                continue  # a blank line, or a spreadsheet's empty row
            if columns is None:
                record[0] = record[0].lstrip("\ufeff")
                columns = _header(record)
                width = len(record)
                continue
            parsed.total += 1
            if parsed.total > max_rows:
                continue  # counted, not read
            row = _Row(number=index + 1, record=record, columns=columns, width=width)
            read = _read_row(row, tz=tz, glucose_unit=glucose_unit)
            parsed.errors.extend(row.errors)
            if read is not None:
                parsed.rows.append(read)
    except csv.Error:
        raise CsvRefused(_("The file is not a well-formed CSV (check the quotes).")) from None
    if parsed.total > max_rows:
        raise CsvRefused(
            _("The file has %(count)s readings; at most %(max)s can be imported at once. Split it into smaller files.")
            % {"count": parsed.total, "max": max_rows}
        )
    if parsed.total == 0:
        raise CsvRefused(_("The file has no readings, only a header."))
    return parsed


def template_csv(*, glucose_unit: str) -> str:
    """The downloadable template: the header and two example rows."""
    glucose = "110" if glucose_unit == MG_DL else "6.1"
    unit = MG_DL if glucose_unit == MG_DL else MMOL_L
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    writer.writerow(["2025-03-01 07:30", "blood_pressure", "128", "82", "70", "", "", "", ""])
    writer.writerow(["2025-03-01 06:45", "glucose", "", "", "", glucose, unit, "fasting", _("before breakfast")])
    return out.getvalue()
