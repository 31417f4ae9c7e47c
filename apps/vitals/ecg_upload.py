"""What an upload must pass before it is stored: the checks that need no
decoding. The format is told from the content (never the file name) with
the rules and messages of ``apps.vitals.ecg.formats``; zip limits and paths,
EDF's header against its length and its channel labels are checked here.
Decoding (and what only decoding finds: a WFDB record cut off, values that
are not numbers…) happens in the analysis task, whose failure is shown with
its reason (docs/ecg-recordings.md).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import PurePosixPath

from django.utils.translation import gettext_lazy as _

from apps.vitals.ecg import DEFAULT_LIMITS, EcgFileError, EcgLimits
from apps.vitals.ecg import formats as ecg_formats

# Enough text to hold any header we read (formats.MAX_HEADER_LINES lines).
TEXT_HEAD_BYTES = 64 * 1024
EDF_LABEL_BYTES = 16


def ecg_format_detect(data: bytes, *, limits: EcgLimits = DEFAULT_LIMITS) -> str:
    """The format of ``data`` (one of formats.FORMAT_*), or EcgFileError with
    a translated reason. Reads the zip's directory, EDF's header or the first
    64 KB of text: milliseconds, whatever the size."""
    if not data:
        raise EcgFileError("empty", _("The file is empty."))
    if len(data) > limits.max_file_bytes:
        raise EcgFileError(
            "too_large",
            _("The file is larger than %(limit)s MB."),
            limit=f"{limits.max_file_bytes / 1024 / 1024:g}",
        )
    try:
        if data.startswith(ecg_formats.ZIP_MAGIC):
            return _zip_check(data, limits)
        if data.startswith(ecg_formats.EDF_MAGIC) and len(data) >= 256:
            return _edf_check(data)
        return _text_check(data, limits)
    except EcgFileError:
        raise
    except Exception as error:  # hostile input is a refused file, never a crash
        raise EcgFileError("unreadable", _("The file could not be read as an ECG.")) from error


def _zip_check(data: bytes, limits: EcgLimits) -> str:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as error:
        raise EcgFileError("zip_invalid", _("The zip file is damaged.")) from error
    with archive:
        infos = ecg_formats._zip_members_check(archive, limits)  # the parser's own limits and path rules
    names = [PurePosixPath(info.filename).name for info in infos if not info.filename.startswith("__MACOSX/")]
    if not any(name.lower().endswith(".hea") for name in names):
        raise EcgFileError("wfdb_missing_header", _("The zip holds no WFDB header (.hea) file."))
    return ecg_formats.FORMAT_WFDB


def _edf_check(data: bytes) -> str:
    ecg_formats._edf_layout_check(data)  # the header against the length: cut off, or more than it says
    n_signals = int(data[252:256].decode("ascii").strip())
    labels = [
        data[256 + EDF_LABEL_BYTES * index : 256 + EDF_LABEL_BYTES * (index + 1)].decode("latin-1").strip()
        for index in range(n_signals)
    ]
    if not any(ecg_formats._ECG_LABEL.search(label) for label in labels):
        raise EcgFileError(
            "edf_no_ecg_channel",
            _("The EDF file has no ECG channel (a channel labelled ECG, EKG or with a lead name such as II)."),
        )
    return ecg_formats.FORMAT_EDF


def _text_check(data: bytes, limits: EcgLimits) -> str:
    head = data[:TEXT_HEAD_BYTES]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) and len(head) % 2:
        head = head[:-1]
    text = ecg_formats._text_decode(head)  # refuses binaries, whatever the file is called
    lines = text.splitlines()
    if len(data) > len(head) and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut
    header = [line for line in lines[: ecg_formats.MAX_HEADER_LINES] if line.strip()]
    if ecg_formats._generic_header(header):
        return ecg_formats.FORMAT_GENERIC_CSV
    if ecg_formats._apple_sample_rate(header) is not None:
        return ecg_formats.FORMAT_APPLE_CSV
    # Neither layout: the parser says why (a WFDB header alone, or no ECG format at all).
    ecg_formats._dispatch("\n".join(lines).encode("utf-8"), limits)
    raise EcgFileError("unknown_format", _("The file could not be read as an ECG."))  # pragma: no cover
