"""An analysed ECG recording row, without a file or an analysis run (the
FHIR mapping reads only the row)."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from apps.accounts.models import User
from apps.vitals.models import EcgRecording
from tests.vitals.conftest import NOW

SUMMARY: dict[str, Any] = {
    "analysis_version": 1,
    "detector": "sleepecg 0.5.9",
    "sample_rate_hz": 360.0,
    "duration_s": 1805.556,
    "lead": "MLII",
    "source_format": "wfdb",
    "beat_count": 2273,
    "heart_rate": {"mean_bpm": 75.5, "min_bpm": 54.1, "max_bpm": 98.2},
    "rr": {"count": 2272, "mean_ms": 794.7, "min_ms": 611.1, "max_ms": 1108.3},
    "hrv": {"nn_count": 2270, "sdnn_ms": 51.2, "rmssd_ms": 60.3, "pnn50_pct": 12.1},
    "af": {
        "method": "nRMSSD, Shannon entropy and turning points",
        "assessment": "segments",
        "segments": 17,
        "segments_flagged": 0,
        "irregular": False,
        "nrmssd": 0.07,
        "shannon_entropy": 0.4,
        "turning_point_ratio": 0.6,
    },
    "quality": {
        "index": 0.98,
        "level": "good",
        "windows": 180,
        "windows_acceptable": 177,
        "mean_template_correlation": 0.93,
    },
}


def make_ecg(patient: User, *, by: User | None = None, status: str = "done", **overrides: Any) -> EcgRecording:
    fields: dict[str, Any] = {
        "patient": patient,
        "uploaded_by": by or patient,
        "storage_key": secrets.token_hex(16),
        "original_name": "100.zip",
        "size_bytes": 123_456,
        "sha256": secrets.token_hex(32),
        "file_format": "wfdb",
        "status": status,
        "sample_rate_hz": 360.0,
        "duration_s": 1805.556,
        "lead": "MLII",
        "recorded_at": NOW - timedelta(days=2),
    }
    if status == "done":
        fields.update(summary=SUMMARY, beat_count=2273, category="hr_normal", severity="normal", analysed_at=NOW)
    fields.update(overrides)
    return EcgRecording.objects.create(**fields)
