"""What an upload must pass before it is stored: the checks that need no
decoding. The format is told from the content (never the file name) by
``apps.vitals.ecg.formats.ecg_file_sniff``, with the parser's own rules and
messages (zip limits and paths, EDF's header against its length and its
channel labels, a text header's layout). Decoding (and what only decoding
finds: a WFDB record cut off, values that are not numbers…) happens in the
analysis task, whose failure is shown with its reason
(docs/ecg-recordings.md).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from apps.vitals.ecg import DEFAULT_LIMITS, EcgFileError, EcgLimits, ecg_file_sniff


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
        return ecg_file_sniff(data, limits=limits)
    except EcgFileError:
        raise
    except Exception as error:  # hostile input is a refused file, never a crash
        raise EcgFileError("unreadable", _("The file could not be read as an ECG.")) from error
