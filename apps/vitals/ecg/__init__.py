"""ECG files and their analysis, with no Django models: ``ecg_file_read``
turns an upload into an :class:`EcgSignal`, ``ecg_analyse`` turns that into
an :class:`EcgAnalysis` (docs/ecg-analysis.md); ``ecg_file_sniff`` tells an
upload's format without decoding it."""

from apps.vitals.ecg.analysis import EcgAnalysis, ecg_analyse
from apps.vitals.ecg.formats import ecg_file_read, ecg_file_sniff
from apps.vitals.ecg.recording import DEFAULT_LIMITS, MAX_FILE_BYTES, EcgFileError, EcgLimits, EcgSignal

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_FILE_BYTES",
    "EcgAnalysis",
    "EcgFileError",
    "EcgLimits",
    "EcgSignal",
    "ecg_analyse",
    "ecg_file_read",
    "ecg_file_sniff",
]
