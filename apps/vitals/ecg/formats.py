"""Read an uploaded ECG file, whatever its name says: the format is told by
the content. Apple Watch Health-export CSV, the generic single-lead CSV
(docs/ecg-analysis.md), WFDB (.hea + .dat in a zip) and EDF/EDF+.

Everything refused raises :class:`EcgFileError`; nothing else escapes.
"""

from __future__ import annotations

import csv
import datetime
import io
import re
import tempfile
import warnings
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt
from django.utils.translation import gettext_lazy as _

from apps.vitals.ecg.recording import (
    DEFAULT_LIMITS,
    EcgFileError,
    EcgLimits,
    EcgSignal,
    ecg_signal_make,
    sample_rate_check,
    unit_scale_to_mv,
)

FORMAT_APPLE_CSV = "apple_watch_csv"
FORMAT_GENERIC_CSV = "generic_csv"
FORMAT_WFDB = "wfdb"
FORMAT_EDF = "edf"

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
EDF_MAGIC = b"0       "
# Lines of header text we read before the values start (Apple writes about 12).
MAX_HEADER_LINES = 64


def ecg_file_read(source: bytes | BinaryIO | Path, *, limits: EcgLimits = DEFAULT_LIMITS) -> EcgSignal:
    """Decode one uploaded file into one ECG lead in mV."""
    data = _bytes_read(source, limits)
    if not data:
        raise EcgFileError("empty", _("The file is empty."))
    try:
        return _dispatch(data, limits)
    except EcgFileError:
        raise
    except MemoryError as error:
        raise EcgFileError("too_large", _("The file is too large to analyse.")) from error
    except Exception as error:  # a library choking on hostile input is a refused file, not a crash
        raise EcgFileError("unreadable", _("The file could not be read as an ECG.")) from error


# Enough text to hold any header we read (MAX_HEADER_LINES lines).
SNIFF_TEXT_BYTES = 64 * 1024
EDF_LABEL_BYTES = 16


def ecg_file_sniff(data: bytes, *, limits: EcgLimits = DEFAULT_LIMITS) -> str:
    """The format of ``data`` (one of the FORMAT_* names) without decoding
    the samples, by the same rules and with the same messages as
    ``ecg_file_read``: a zip's directory (its file count, sizes and paths,
    a WFDB header in it), EDF's header against the file's length and its
    channel labels, or the first 64 KB of text. Milliseconds, whatever the
    size. What only decoding finds (a WFDB record cut off, values that are
    not numbers) is left to ``ecg_file_read``. Raises EcgFileError."""
    if data.startswith(ZIP_MAGIC):
        return _zip_sniff(data, limits)
    if data.startswith(EDF_MAGIC) and len(data) >= 256:
        return _edf_sniff(data)
    return _text_sniff(data, limits)


def _zip_sniff(data: bytes, limits: EcgLimits) -> str:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as error:
        raise EcgFileError("zip_invalid", _("The zip file is damaged.")) from error
    with archive:
        infos = _zip_members_check(archive, limits)
    names = [PurePosixPath(info.filename).name for info in infos if not info.filename.startswith("__MACOSX/")]
    if not any(name.lower().endswith(".hea") for name in names):
        raise EcgFileError("wfdb_missing_header", _("The zip holds no WFDB header (.hea) file."))
    return FORMAT_WFDB


def _edf_sniff(data: bytes) -> str:
    _edf_layout_check(data)  # the header against the length: cut off, or more than it says
    n_signals = _ascii_int(data[252:256])
    labels = [
        data[256 + EDF_LABEL_BYTES * index : 256 + EDF_LABEL_BYTES * (index + 1)].decode("latin-1").strip()
        for index in range(n_signals)
    ]
    if not any(_ECG_LABEL.search(label) for label in labels):
        raise _edf_no_ecg_channel()
    return FORMAT_EDF


def _text_sniff(data: bytes, limits: EcgLimits) -> str:
    head = data[:SNIFF_TEXT_BYTES]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) and len(head) % 2:
        head = head[:-1]
    text = _text_decode(head)  # refuses binaries, whatever the file is called
    lines = text.splitlines()
    if len(data) > len(head) and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut
    header = [line for line in lines[:MAX_HEADER_LINES] if line.strip()]
    if _generic_header(header):
        return FORMAT_GENERIC_CSV
    if _apple_sample_rate(header) is not None:
        return FORMAT_APPLE_CSV
    # Neither layout: the parser says why (a WFDB header alone, or no ECG format at all).
    _dispatch("\n".join(lines).encode("utf-8"), limits)
    raise EcgFileError("unknown_format", _("The file could not be read as an ECG."))  # pragma: no cover


def _bytes_read(source: bytes | BinaryIO | Path, limits: EcgLimits) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, Path):
        if source.stat().st_size > limits.max_file_bytes:
            raise _too_large(limits)
        data = source.read_bytes()
    else:
        data = source.read(limits.max_file_bytes + 1)
    if len(data) > limits.max_file_bytes:
        raise _too_large(limits)
    return data


def _too_large(limits: EcgLimits) -> EcgFileError:
    return EcgFileError(
        "too_large",
        _("The file is larger than %(limit)s MB."),
        limit=f"{limits.max_file_bytes / 1024 / 1024:g}",
    )


def _dispatch(data: bytes, limits: EcgLimits) -> EcgSignal:
    if data.startswith(ZIP_MAGIC):
        return _wfdb_zip_read(data, limits)
    if data.startswith(EDF_MAGIC) and len(data) >= 256:
        return _edf_read(data, limits)
    text = _text_decode(data)
    head = _head_lines(text)
    header = [line for _offset, line in head if line.strip()]
    if _generic_header(header):
        return _generic_csv_read(text, head, limits)
    if _apple_sample_rate(header) is not None:
        return _apple_csv_read(text, head, limits)
    wfdb_lines = [line for line in header if not line.lstrip().startswith("#")]
    if len(wfdb_lines) > 1 and _WFDB_RECORD_LINE.match(wfdb_lines[0]) and _WFDB_SIGNAL_LINE.match(wfdb_lines[1]):
        raise EcgFileError(
            "wfdb_needs_zip",
            _("This is a WFDB header alone; upload the .hea and .dat files together in one zip."),
        )
    raise EcgFileError(
        "unknown_format",
        _(
            "The file is not an ECG format we read: an Apple Watch Health export CSV, "
            "a single-lead CSV with its sampling rate, WFDB (.hea and .dat in a zip) or EDF."
        ),
    )


def _not_ecg() -> EcgFileError:
    return EcgFileError(
        "not_ecg",
        _("The file is not text, a zip or EDF: it is not an ECG file we read."),
    )


def _text_decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as error:
            raise _not_ecg() from error
    else:
        if b"\x00" in data:
            raise _not_ecg()
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            # Some exports are in the computer's legacy code page; the values are ASCII.
            text = data.decode("latin-1")
    sample = text[:4096]
    controls = sum(1 for char in sample if ord(char) < 32 and char not in "\r\n\t")
    if controls > len(sample) // 100:
        raise _not_ecg()
    return text


# --- Values, shared by both CSV layouts -------------------------------------------------

_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")
_TRAILING_SEPARATORS = re.compile(r"[ \t]*[,;\t][,;\t ]*(?=\r?$)", re.MULTILINE)
_BLANK_LINE = re.compile(r"^[ \t\r]*$", re.MULTILINE)


def _head_lines(text: str) -> list[tuple[int, str]]:
    """The first lines (and one more) with their offsets, without splitting
    the whole text: a 50 MB CSV split into lines is half a gigabyte of strings."""
    head = []
    offset = 0
    for _index in range(MAX_HEADER_LINES + 1):
        if offset > len(text):
            break
        end = text.find("\n", offset)
        end = len(text) if end == -1 else end
        head.append((offset, text[offset:end].rstrip("\r")))
        offset = end + 1
    return head


def _value_clean(line: str) -> str:
    return line.strip().strip("\"'").strip().rstrip(",;\t").strip().strip("\"'")


def _values_parse(block: str, first_line_number: int) -> npt.NDArray[np.float64]:
    """One value per line, decimal point or decimal comma, optional quotes,
    trailing separators tolerated; blank lines skipped. Parsed by numpy from
    the text itself (no list of strings); any doubt goes to the line-by-line
    check that names the line."""
    cleaned = _TRAILING_SEPARATORS.sub("", block.replace('"', "").replace("'", ""))
    if "," in cleaned:
        if "." in cleaned:
            _bad_value_raise(block, first_line_number)
        cleaned = cleaned.replace(",", ".")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            values = np.fromstring(cleaned, dtype=np.float64, sep=" ")
    except (ValueError, DeprecationWarning):
        _bad_value_raise(block, first_line_number)
        raise  # unreachable: the line above raises
    lines = cleaned.count("\n") + 1 - len(_BLANK_LINE.findall(cleaned))
    if values.size != lines:  # two numbers on a line, or none
        _bad_value_raise(block, first_line_number)
    if values.size == 0:
        raise EcgFileError("no_samples", _("The file holds no ECG samples."))
    return values


def _bad_value_raise(block: str, first_line_number: int) -> None:
    for offset, line in enumerate(io.StringIO(block)):
        value = _value_clean(line)
        if value and not _NUMBER.match(value):
            raise EcgFileError(
                "bad_value",
                _("Line %(line)s is not a number: %(value)s"),
                line=first_line_number + offset,
                value=value[:40],
            )
    raise EcgFileError(
        "bad_value",
        _("The values mix decimal points and decimal commas."),
    )


def _number_parse(text: str) -> float | None:
    value = text.strip().replace(",", ".")
    try:
        number = float(value)
    except ValueError:
        return None
    return number if np.isfinite(number) else None


def _first_value_line(head: list[tuple[int, str]]) -> int:
    for index, (_offset, line) in enumerate(head):
        value = _value_clean(line)
        if value and _NUMBER.match(value):
            return index
    raise EcgFileError("no_samples", _("The file holds no ECG samples."))


# --- Generic single-lead CSV ------------------------------------------------------------

_GENERIC_KEY = re.compile(r"^\s*#?\s*([a-z_]+)\s*[=:]\s*(.*?)\s*$", re.IGNORECASE)
GENERIC_KEYS = {"sample_rate_hz", "unit", "lead", "started_at"}


def _generic_header(header: list[str]) -> bool:
    for line in header:
        match = _GENERIC_KEY.match(line)
        if match and match.group(1).lower() == "sample_rate_hz":
            return True
    return False


def _generic_csv_read(text: str, head: list[tuple[int, str]], limits: EcgLimits) -> EcgSignal:
    fields: dict[str, str] = {}
    start = 0
    for index, (_offset, line) in enumerate(head[:MAX_HEADER_LINES]):
        stripped = line.strip()
        if not stripped:
            continue
        match = _GENERIC_KEY.match(stripped)
        if match and match.group(1).lower() in GENERIC_KEYS:
            fields[match.group(1).lower()] = match.group(2)
            start = index + 1
        elif stripped.startswith("#"):
            start = index + 1
        else:
            break
    rate = _number_parse(fields.get("sample_rate_hz", ""))
    if rate is None:
        raise EcgFileError("no_sample_rate", _("The sampling rate (sample_rate_hz) is missing or not a number."))
    unit = fields.get("unit", "mV")
    scale = unit_scale_to_mv(unit)
    if scale is None:
        raise EcgFileError("unit", _("The unit %(unit)s is not a voltage (mV or µV)."), unit=unit[:16])
    started_at = None
    if fields.get("started_at"):
        try:
            started_at = datetime.datetime.fromisoformat(fields["started_at"])
        except ValueError as error:
            raise EcgFileError("bad_start", _("The start time is not an ISO 8601 date and time.")) from error
    values = _values_parse(text[head[start][0] :] if start < len(head) else "", start + 1)
    values *= scale
    return ecg_signal_make(
        samples_mv=values,
        sample_rate_hz=rate,
        lead=fields.get("lead", "") or "?",
        started_at=started_at,
        source_format=FORMAT_GENERIC_CSV,
        limits=limits,
    )


# --- Apple Watch Health-export CSV -----------------------------------------------------

# "Sample Rate,512 hertz" in English; other languages translate the key and
# the unit, so the rate is found by its value: a number and a word for hertz.
_HERTZ_VALUE = re.compile(r"^\s*(\d+(?:[.,]\d+)?)\s*(hertz|hz|赫兹|赫|герц|hercios?|hertzs?)\s*$", re.IGNORECASE)
_APPLE_UNIT_KEYS = {"unit", "einheit", "unité", "unidad", "unità", "单位", "單位", "单元", "単位"}
_APPLE_LEAD_KEYS = {"lead", "ableitung", "dérivation", "derivación", "derivazione", "导联", "導程", "誘導"}
_APPLE_DATE_KEYS = {"recorded date", "aufnahmedatum", "date d\u2019enregistrement", "date d'enregistrement", "记录日期"}
_APPLE_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S %z", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%d %H:%M %z")


def _header_rows(header: list[str]) -> list[list[str]]:
    rows = []
    for line in header:
        delimiter = max(",;\t", key=line.count)
        try:
            row = next(csv.reader([line], delimiter=delimiter))
        except (csv.Error, StopIteration):
            continue
        if len(row) >= 2:
            rows.append([cell.strip() for cell in row])
    return rows


def _apple_sample_rate(header: list[str]) -> float | None:
    for row in _header_rows(header):
        match = _HERTZ_VALUE.match(row[1])
        if match:
            return _number_parse(match.group(1))
    return None


def _apple_csv_read(text: str, head: list[tuple[int, str]], limits: EcgLimits) -> EcgSignal:
    start = _first_value_line(head)
    header = [line for _offset, line in head[:start] if line.strip()]
    rows = _header_rows(header)
    rate = _apple_sample_rate(header)
    if rate is None:  # pragma: no cover - the dispatcher only comes here when it is found
        raise EcgFileError("no_sample_rate", _("The sampling rate is missing."))
    scale = 1e-3  # Apple writes µV
    lead = "I"
    started_at = None
    for key, value, *_rest in rows:
        normalised = key.strip().lower()
        if normalised in _APPLE_UNIT_KEYS:
            unit_scale = unit_scale_to_mv(value)
            if unit_scale is None:
                raise EcgFileError("unit", _("The unit %(unit)s is not a voltage (mV or µV)."), unit=value[:16])
            scale = unit_scale
        elif normalised in _APPLE_LEAD_KEYS and value:
            lead = value.split()[-1]
        elif normalised in _APPLE_DATE_KEYS:
            started_at = _apple_date_parse(value)
    values = _values_parse(text[head[start][0] :], start + 1)
    values *= scale
    return ecg_signal_make(
        samples_mv=values,
        sample_rate_hz=rate,
        lead=lead,
        started_at=started_at,
        source_format=FORMAT_APPLE_CSV,
        limits=limits,
    )


def _apple_date_parse(value: str) -> datetime.datetime | None:
    for pattern in _APPLE_DATE_FORMATS:
        try:
            return datetime.datetime.strptime(value.strip(), pattern)  # noqa: DTZ007  # every pattern has %z
        except ValueError:
            continue
    return None


# --- WFDB in a zip ---------------------------------------------------------------------

_WFDB_RECORD_LINE = re.compile(r"^[\w.-]+(/\d+)?\s+\d+(\s|$)")
_WFDB_SIGNAL_LINE = re.compile(r"^[\w.-]+\s+\d+")
# Bytes per sample of each WFDB storage format we read (FLAC formats 508-524 are refused).
WFDB_BYTES_PER_SAMPLE = {
    "8": 1.0,
    "16": 2.0,
    "24": 3.0,
    "32": 4.0,
    "61": 2.0,
    "80": 1.0,
    "160": 2.0,
    "212": 1.5,
    "310": 4 / 3,
    "311": 4 / 3,
}
MAX_WFDB_HEADER_BYTES = 1024 * 1024


def _zip_members_check(archive: zipfile.ZipFile, limits: EcgLimits) -> list[zipfile.ZipInfo]:
    infos = [info for info in archive.infolist() if not info.is_dir()]
    if len(infos) > limits.max_zip_members:
        raise EcgFileError(
            "zip_too_many_files",
            _("The zip holds %(count)s files; at most %(limit)s are accepted."),
            count=len(infos),
            limit=limits.max_zip_members,
        )
    total = 0
    for info in archive.infolist():
        name = info.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or "\\" in name or ".." in parts or (parts and ":" in parts[0]):
            raise EcgFileError(
                "zip_unsafe_path", _("The zip holds a file outside its own folder: %(name)s"), name=name[:80]
            )
        if info.flag_bits & 0x1:
            raise EcgFileError("zip_encrypted", _("The zip is encrypted."))
        total += info.file_size
        if total > limits.max_zip_uncompressed_bytes:
            raise _zip_too_large(limits)
        if info.file_size > MEBIBYTE_FOR_RATIO and info.file_size > limits.max_zip_ratio * max(info.compress_size, 1):
            raise EcgFileError("zip_ratio", _("The zip is compressed beyond what real ECG data allows (a zip bomb?)."))
    return infos


MEBIBYTE_FOR_RATIO = 1024 * 1024


def _zip_too_large(limits: EcgLimits) -> EcgFileError:
    return EcgFileError(
        "zip_too_large",
        _("The zip unpacks to more than %(limit)s MB."),
        limit=f"{limits.max_zip_uncompressed_bytes / 1024 / 1024:g}",
    )


def _zip_member_read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes:
    """Read one member, never more than its declared size or the budget left."""
    chunks = []
    size = 0
    try:
        with archive.open(info) as member:
            while True:
                chunk = member.read(1 << 20)
                if not chunk:
                    break
                size += len(chunk)
                if size > info.file_size or size > budget:
                    raise EcgFileError(
                        "zip_ratio", _("The zip is compressed beyond what real ECG data allows (a zip bomb?).")
                    )
                chunks.append(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as error:
        raise EcgFileError("zip_invalid", _("The zip file is damaged.")) from error
    return b"".join(chunks)


def _wfdb_zip_read(data: bytes, limits: EcgLimits) -> EcgSignal:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as error:
        raise EcgFileError("zip_invalid", _("The zip file is damaged.")) from error
    with archive:
        infos = _zip_members_check(archive, limits)
        by_name: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            base = PurePosixPath(info.filename).name
            if info.filename.startswith("__MACOSX/") or base.startswith("."):
                continue
            if base in by_name:
                raise EcgFileError("zip_duplicate", _("The zip holds two files named %(name)s."), name=base[:80])
            by_name[base] = info
        headers = sorted(name for name in by_name if name.lower().endswith(".hea"))
        if not headers:
            raise EcgFileError("wfdb_missing_header", _("The zip holds no WFDB header (.hea) file."))
        if len(headers) > 1:
            raise EcgFileError("wfdb_many_records", _("The zip holds more than one WFDB record; upload one."))
        header_name = headers[0]
        if by_name[header_name].file_size > MAX_WFDB_HEADER_BYTES:
            raise _wfdb_invalid_header()
        budget = limits.max_zip_uncompressed_bytes
        header_bytes = _zip_member_read(archive, by_name[header_name], budget)
        with tempfile.TemporaryDirectory(prefix="telemed-ecg-") as directory:
            folder = Path(directory)
            (folder / header_name).write_bytes(header_bytes)
            record_name = header_name[: -len(".hea")]
            header = _wfdb_header_read(folder / record_name)
            file_names = sorted({str(name) for name in header.file_name})
            for file_name in file_names:
                if file_name != PurePosixPath(file_name).name or file_name not in by_name:
                    raise EcgFileError(
                        "wfdb_missing_data",
                        _("The header names a data file that is not in the zip: %(name)s"),
                        name=file_name[:80],
                    )
                member = _zip_member_read(archive, by_name[file_name], budget)
                budget -= len(member)
                (folder / file_name).write_bytes(member)
            return _wfdb_record_read(folder, record_name, header, limits)


def _wfdb_invalid_header(error: BaseException | None = None) -> EcgFileError:
    failure = EcgFileError("wfdb_invalid_header", _("The WFDB header (.hea) cannot be read."))
    if error is not None:
        failure.__cause__ = error
    return failure


def _wfdb_header_read(path: Path) -> Any:  # a wfdb.Record holding only the header
    import wfdb

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            header = wfdb.rdheader(str(path))
    except Exception as error:
        raise _wfdb_invalid_header(error) from error
    if getattr(header, "seg_name", None) is not None or not getattr(header, "file_name", None):
        raise EcgFileError(
            "wfdb_unsupported", _("Multi-segment WFDB records and records without signals are not supported.")
        )
    return header


def _wfdb_lead_choose(names: list[str]) -> int:
    upper = [name.strip().upper() for name in names]
    if "MLII" in upper:
        return upper.index("MLII")
    return 0


def _wfdb_record_read(folder: Path, record_name: str, header: Any, limits: EcgLimits) -> EcgSignal:
    import wfdb

    names = [str(name) for name in (getattr(header, "sig_name", None) or [])]
    formats = [str(fmt) for fmt in header.fmt]
    file_names = [str(name) for name in header.file_name]
    n_sig = int(header.n_sig)
    if n_sig < 1 or len(formats) != n_sig or len(file_names) != n_sig:
        raise _wfdb_invalid_header()
    channel = _wfdb_lead_choose(names) if len(names) == n_sig else 0
    for fmt in formats:
        if fmt not in WFDB_BYTES_PER_SAMPLE:
            raise EcgFileError(
                "wfdb_unsupported", _("WFDB storage format %(format)s is not supported."), format=fmt[:8]
            )
    sample_rate = float(header.fs)
    sample_rate_check(sample_rate, limits)
    sig_len = header.sig_len
    byte_offsets = getattr(header, "byte_offset", None) or [None] * n_sig
    samps_per_frame = getattr(header, "samps_per_frame", None) or [1] * n_sig
    if any(int(spf or 1) != 1 for spf in samps_per_frame):
        raise EcgFileError("wfdb_unsupported", _("WFDB records with several samples per frame are not supported."))
    # Every data file must hold exactly what the header says, no less, no more.
    for file_name in sorted(set(file_names)):
        in_file = [index for index in range(n_sig) if file_names[index] == file_name]
        file_formats = {formats[index] for index in in_file}
        if len(file_formats) != 1:
            raise _wfdb_invalid_header()
        bytes_per_sample = WFDB_BYTES_PER_SAMPLE[file_formats.pop()]
        offset = int(byte_offsets[in_file[0]] or 0)
        actual = (folder / file_name).stat().st_size - offset
        if sig_len is None:
            continue
        expected = int(sig_len) * len(in_file) * bytes_per_sample
        if actual < int(np.floor(expected)):
            raise EcgFileError(
                "wfdb_truncated",
                _("The data file %(name)s is shorter than its header says: the recording is cut off."),
                name=file_name[:80],
            )
        if actual > int(np.ceil(expected)) + 4:
            raise EcgFileError(
                "wfdb_mismatch",
                _("The data file %(name)s holds more samples than its header says: header and data disagree."),
                name=file_name[:80],
            )
    if sig_len is not None and int(sig_len) / sample_rate > limits.max_duration_s:
        raise EcgFileError(
            "too_long",
            _("The recording lasts %(hours)s h; at most %(maximum)s h can be analysed."),
            hours=f"{int(sig_len) / sample_rate / 3600:.1f}",
            maximum=f"{limits.max_duration_s / 3600:g}",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            record = wfdb.rdrecord(str(folder / record_name), channels=[channel], physical=False)
    except Exception as error:
        raise EcgFileError(
            "wfdb_unreadable", _("The WFDB data cannot be read with its header: header and data disagree.")
        ) from error
    digital = np.asarray(record.d_signal)[:, 0].astype(np.int64)
    _wfdb_consistency_check(header, channel, digital)
    gain = float(header.adc_gain[channel] or 200.0)
    baseline = float(header.baseline[channel] or 0)
    unit = str((getattr(header, "units", None) or ["mV"] * n_sig)[channel] or "mV")
    scale = unit_scale_to_mv(unit)
    if scale is None:
        raise EcgFileError("unit", _("The unit %(unit)s is not a voltage (mV or µV)."), unit=unit[:16])
    if gain <= 0 or not np.isfinite(gain):
        raise _wfdb_invalid_header()
    invalid = _wfdb_invalid_value(formats[channel])
    physical = (digital.astype(np.float64) - baseline) / gain * scale
    if invalid is not None:
        missing = digital == invalid
        if missing.any():
            physical = _gaps_fill(physical, missing)
    started_at = None
    base_date = getattr(header, "base_date", None)
    base_time = getattr(header, "base_time", None)
    if base_date is not None and base_time is not None:
        started_at = datetime.datetime.combine(base_date, base_time)  # WFDB times have no zone
    lead = names[channel] if channel < len(names) else "?"
    return ecg_signal_make(
        samples_mv=physical,
        sample_rate_hz=sample_rate,
        lead=lead,
        started_at=started_at,
        source_format=FORMAT_WFDB,
        limits=limits,
    )


def _wfdb_invalid_value(fmt: str) -> int | None:
    return {
        "8": -128,
        "16": -32768,
        "61": -32768,
        "80": -128,
        "160": -32768,
        "212": -2048,
        "310": -512,
        "311": -512,
        "24": -8388608,
        "32": -2147483648,
    }.get(fmt)


def _wfdb_consistency_check(header: Any, channel: int, digital: npt.NDArray[np.int64]) -> None:
    checksums = getattr(header, "checksum", None)
    if checksums and checksums[channel] is not None and (int(np.sum(digital)) - int(checksums[channel])) % 65536:
        raise EcgFileError(
            "wfdb_mismatch",
            _("The data do not match the checksum in the header: header and data disagree."),
        )
    init_values = getattr(header, "init_value", None)
    if (
        init_values
        and init_values[channel] is not None
        and digital.size
        and int(digital[0]) != int(init_values[channel])
    ):
        raise EcgFileError(
            "wfdb_mismatch",
            _("The first sample does not match the header: header and data disagree."),
        )


def _gaps_fill(values: npt.NDArray[np.float64], missing: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    if missing.mean() > 0.2:
        raise EcgFileError("too_many_gaps", _("More than a fifth of the recording is missing."))
    positions = np.arange(values.size)
    filled = values.copy()
    filled[missing] = np.interp(positions[missing], positions[~missing], values[~missing])
    return filled


# --- EDF / EDF+ ------------------------------------------------------------------------

_ECG_LABEL = re.compile(
    r"(\b|_)(ecg|ekg|mlii|lead|ableitung)(\b|_|\d)|^(i|ii|iii|avr|avl|avf|v[1-6]|ml[i]{1,3})$",
    re.IGNORECASE,
)
_ECG_LABEL_PREFERENCE = (re.compile(r"\bmlii\b|\bii\b", re.IGNORECASE), re.compile(r"\bi\b", re.IGNORECASE))


def _edf_no_ecg_channel() -> EcgFileError:
    return EcgFileError(
        "edf_no_ecg_channel",
        _("The EDF file has no ECG channel (a channel labelled ECG, EKG or with a lead name such as II)."),
    )


def _edf_invalid() -> EcgFileError:
    return EcgFileError("edf_invalid", _("The EDF header cannot be read."))


def _ascii_int(field: bytes) -> int:
    try:
        return int(field.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError) as error:
        raise _edf_invalid() from error


def _ascii_float(field: bytes) -> float:
    try:
        value = float(field.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError) as error:
        raise _edf_invalid() from error
    if not np.isfinite(value):
        raise _edf_invalid()
    return value


def _edf_layout_check(data: bytes) -> None:
    """Check the header against the data length before any library reads it."""
    header_bytes = _ascii_int(data[184:192])
    n_records = _ascii_int(data[236:244])
    record_duration_s = _ascii_float(data[244:252])
    n_signals = _ascii_int(data[252:256])
    if n_signals < 1 or n_signals > 512 or header_bytes != 256 * (n_signals + 1):
        raise _edf_invalid()
    if len(data) < header_bytes:
        raise EcgFileError("edf_truncated", _("The EDF file is cut off: its header is incomplete."))
    reserved = data[192:236].decode("ascii", "replace").strip()
    if reserved.startswith("EDF+D"):
        raise EcgFileError(
            "edf_discontinuous", _("Discontinuous EDF+ (EDF+D) recordings are not supported; export as EDF+C.")
        )
    base = 256 + n_signals * 216
    samples_per_record = [_ascii_int(data[base + 8 * index : base + 8 * index + 8]) for index in range(n_signals)]
    if any(count < 1 for count in samples_per_record) or record_duration_s < 0:
        raise _edf_invalid()
    record_bytes = 2 * sum(samples_per_record)
    data_bytes = len(data) - header_bytes
    if n_records == -1:
        if data_bytes % record_bytes:
            raise EcgFileError("edf_truncated", _("The EDF file is cut off in the middle of a data record."))
        return
    if n_records < 1:
        raise EcgFileError("no_samples", _("The file holds no ECG samples."))
    expected = n_records * record_bytes
    if data_bytes < expected:
        raise EcgFileError(
            "edf_truncated", _("The EDF file is shorter than its header says: the recording is cut off.")
        )
    if data_bytes > expected:
        raise EcgFileError(
            "edf_mismatch", _("The EDF file holds more data than its header says: header and data disagree.")
        )


def _edf_read(data: bytes, limits: EcgLimits) -> EcgSignal:
    _edf_layout_check(data)
    try:
        return _edf_signal_read(data, limits)
    except (EcgFileError, MemoryError):
        raise
    except Exception as error:  # edfio parses header fields on access: any of them can be garbage
        raise _edf_invalid() from error


def _edf_signal_read(data: bytes, limits: EcgLimits) -> EcgSignal:
    import edfio

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        edf = edfio.read_edf(data, lazy_load_data=True)
        signals = list(edf.signals)
    candidates = [signal for signal in signals if _ECG_LABEL.search(signal.label.strip())]
    if not candidates:
        raise _edf_no_ecg_channel()
    chosen = candidates[0]
    for preference in _ECG_LABEL_PREFERENCE:
        preferred = [signal for signal in candidates if preference.search(signal.label)]
        if preferred:
            chosen = preferred[0]
            break
    scale = unit_scale_to_mv(chosen.physical_dimension)
    if scale is None:
        raise EcgFileError(
            "unit",
            _("The unit %(unit)s is not a voltage (mV or µV)."),
            unit=(chosen.physical_dimension or "—")[:16],
        )
    rate = sample_rate_check(float(chosen.sampling_frequency), limits)
    duration_s = len(chosen.digital) / rate if rate else 0.0
    if duration_s > limits.max_duration_s:
        raise EcgFileError(
            "too_long",
            _("The recording lasts %(hours)s h; at most %(maximum)s h can be analysed."),
            hours=f"{duration_s / 3600:.1f}",
            maximum=f"{limits.max_duration_s / 3600:g}",
        )
    samples = _edf_physical(chosen, scale)
    started_at = _edf_start(edf)
    lead = re.sub(r"(?i)^\s*(ecg|ekg)\s*", "", chosen.label).strip() or chosen.label.strip()
    return ecg_signal_make(
        samples_mv=samples,
        sample_rate_hz=rate,
        lead=lead,
        started_at=started_at,
        source_format=FORMAT_EDF,
        limits=limits,
    )


def _edf_physical(signal: Any, scale: float) -> npt.NDArray[np.float64]:
    """Digital to physical values in mV, in place in one float array (a 24 h
    lead at 500 Hz is 346 MB; edfio's own conversion makes two)."""
    digital_min, digital_max = float(signal.digital_min), float(signal.digital_max)
    physical_min, physical_max = float(signal.physical_min), float(signal.physical_max)
    if digital_max == digital_min or not np.isfinite([physical_min, physical_max]).all():
        raise _edf_invalid()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        samples = np.asarray(signal.digital).astype(np.float64)
    samples -= digital_min
    samples *= (physical_max - physical_min) / (digital_max - digital_min) * scale
    samples += physical_min * scale
    return samples


def _edf_start(edf: object) -> datetime.datetime | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = getattr(edf, "startdatetime", None)
    except Exception:  # an anonymised or malformed start date: no start time
        return None
    return start if isinstance(start, datetime.datetime) else None
