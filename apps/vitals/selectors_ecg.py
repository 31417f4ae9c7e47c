"""Reads of ECG recordings, with the access rules of readings
(docs/vitals.md): the patient and the doctors who see their record read
everything; whoever uploaded a recording for the patient (a clinic admin at
the front desk) sees its status only, as they see the readings they typed;
anyone else gets "not found". Every read is audited.

The viewer never gets a whole recording: a window of samples (at most
``SIGNAL_WINDOW_MAX_S``) or an overview of min/max pairs (at most
``OVERVIEW_MAX_BUCKETS``), read from the stored .npy files through a
memory map, so a 24 h recording costs what the window costs.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from django.core.files.storage import default_storage
from django.db.models import QuerySet
from django.http import Http404

from apps.accounts.models import User
from apps.accounts.selectors import patient_can_be_seen_by, patient_get_for_user
from apps.audit.models import AuditAction
from apps.audit.services import audit_access_denied, audit_record
from apps.vitals.models import EcgRecording, EcgStatus

SIGNAL_WINDOW_MAX_S = 60.0
SIGNAL_WINDOW_DEFAULT_S = 10.0
OVERVIEW_MAX_BUCKETS = 2000
OVERVIEW_DEFAULT_BUCKETS = 600


def _refuse(*, user: User, recording_id: int, object_type: str = "ecg_recording") -> None:
    audit_access_denied(actor=user, object_type=object_type, object_id=recording_id)
    raise Http404


def _recording(recording_id: int) -> EcgRecording | None:
    return EcgRecording.objects.select_related("patient", "uploaded_by").filter(pk=recording_id).first()


def ecg_recording_readable_by(*, user: User, recording: EcgRecording) -> bool:
    """Who reads a recording's analysis, signal and original: the patient and
    the doctors who see their record (clinical data is not the admins')."""
    return patient_can_be_seen_by(user=user, patient=recording.patient)


def ecg_recording_get_for_user(*, user: User, recording_id: int, object_type: str = "ecg_recording") -> EcgRecording:
    """One recording with its analysis, for those who read the patient's
    record; "not found" for anyone else. Audited as ``object_type``."""
    recording = _recording(recording_id)
    if recording is None or not ecg_recording_readable_by(user=user, recording=recording):
        _refuse(user=user, recording_id=recording_id, object_type=object_type)
    assert recording is not None
    audit_record(
        action=AuditAction.VIEW, actor=user, object_type=object_type, object_id=recording.pk, patient=recording.patient
    )
    return recording


@dataclass(frozen=True)
class EcgAccess:
    recording: EcgRecording
    clinical: bool  # False: the uploader, who sees the status only


def ecg_recording_status_get_for_user(*, user: User, recording_id: int) -> EcgAccess:
    """One recording as far as ``user`` may see it: everything for the patient
    and their doctors, the status only for the person who uploaded it."""
    recording = _recording(recording_id)
    if recording is None:
        _refuse(user=user, recording_id=recording_id)
    assert recording is not None
    if ecg_recording_readable_by(user=user, recording=recording):
        clinical = True
    elif recording.uploaded_by_id == user.pk:
        clinical = False
    else:
        _refuse(user=user, recording_id=recording_id)
    audit_record(
        action=AuditAction.VIEW,
        actor=user,
        object_type="ecg_recording" if clinical else "ecg_recording_status",
        object_id=recording.pk,
        patient=recording.patient,
    )
    return EcgAccess(recording=recording, clinical=clinical)


def ecg_recordings_for_user(*, user: User, patient_id: int) -> tuple[User, QuerySet[EcgRecording]]:
    """A patient and their recordings, newest first, for the patient and their doctors."""
    patient = patient_get_for_user(user=user, patient_id=patient_id)
    audit_record(action=AuditAction.VIEW, actor=user, object_type="ecg_recordings", object_id="all", patient=patient)
    recordings = EcgRecording.objects.filter(patient=patient).order_by("-created_at", "-id")
    return patient, recordings


def ecg_original_get_for_user(*, user: User, recording_id: int) -> EcgRecording:
    """The recording whose original ``user`` downloads (audited as an export);
    "not found" without access or when the file is gone."""
    recording = _recording(recording_id)
    if recording is None or not ecg_recording_readable_by(user=user, recording=recording) or not recording.original:
        _refuse(user=user, recording_id=recording_id, object_type="ecg_original")
    assert recording is not None
    audit_record(
        action=AuditAction.EXPORT,
        actor=user,
        object_type="ecg_original",
        object_id=recording.pk,
        patient=recording.patient,
    )
    return recording


# --- The viewer's data -------------------------------------------------------------------


class EcgNotReady(Exception):
    """The recording has no analysis (yet, or it failed)."""


def _npy(name: str) -> npt.NDArray[Any]:
    """A stored .npy, memory-mapped where the storage has local files."""
    try:
        path = default_storage.path(name)
    except NotImplementedError:  # pragma: no cover - a remote storage reads the file whole
        with default_storage.open(name, "rb") as stored:
            return np.load(io.BytesIO(stored.read()), allow_pickle=False)
    return np.load(path, mmap_mode="r", allow_pickle=False)


def _ready(recording: EcgRecording) -> None:
    if recording.status != EcgStatus.DONE or not recording.signal or not recording.signal_rate_hz:
        raise EcgNotReady


def _bounds(recording: EcgRecording, start_s: float, duration_s: float, cap_s: float | None) -> tuple[float, float]:
    total_s = float(recording.duration_s or 0.0)
    start = min(max(0.0, start_s), total_s)
    length = max(0.0, duration_s)
    if cap_s is not None:
        length = min(length, cap_s)
    return start, min(length, total_s - start)


def ecg_signal_window(*, user: User, recording_id: int, start_s: float, duration_s: float) -> dict[str, Any]:
    """The viewer's samples (µV) from ``start_s`` for ``duration_s`` (at most
    ``SIGNAL_WINDOW_MAX_S``), and the R peaks in that window (seconds from
    the start of the recording)."""
    recording = ecg_recording_get_for_user(user=user, recording_id=recording_id, object_type="ecg_signal")
    _ready(recording)
    assert recording.signal_rate_hz is not None
    start, length = _bounds(recording, start_s, duration_s, SIGNAL_WINDOW_MAX_S)
    rate = recording.signal_rate_hz
    signal = _npy(str(recording.signal.name))
    first = min(math.floor(start * rate), signal.size)
    last = min(math.ceil((start + length) * rate), signal.size)
    samples = np.asarray(signal[first:last], dtype=np.int64)
    peaks_s: list[float] = []
    if recording.r_peaks and recording.sample_rate_hz:
        peaks = _npy(str(recording.r_peaks.name))
        fs = recording.sample_rate_hz
        low, high = np.searchsorted(peaks, [first / rate * fs, last / rate * fs])
        peaks_s = [round(float(peak) / fs, 4) for peak in peaks[low:high]]
    return {
        "start_s": round(first / rate, 6),
        "duration_s": round((last - first) / rate, 6),
        "sample_rate_hz": rate,
        "samples_uv": samples.tolist(),
        "r_peaks_s": peaks_s,
        "capped": duration_s > SIGNAL_WINDOW_MAX_S,
        "recording_duration_s": recording.duration_s,
    }


def ecg_overview(
    *, user: User, recording_id: int, start_s: float = 0.0, duration_s: float | None = None, buckets: int
) -> dict[str, Any]:
    """Min/max pairs (µV) of ``buckets`` equal slices of a window (the whole
    recording by default): what the viewer's overview strip draws."""
    recording = ecg_recording_get_for_user(user=user, recording_id=recording_id, object_type="ecg_signal")
    _ready(recording)
    assert recording.signal_rate_hz is not None
    total_s = float(recording.duration_s or 0.0)
    start, length = _bounds(recording, start_s, total_s if duration_s is None else duration_s, None)
    rate = recording.signal_rate_hz
    signal = _npy(str(recording.signal.name))
    first = min(math.floor(start * rate), signal.size)
    last = min(math.ceil((start + length) * rate), signal.size)
    count = max(1, min(int(buckets), OVERVIEW_MAX_BUCKETS, last - first))
    if last <= first:
        lows: list[int] = []
        highs: list[int] = []
    else:
        window = np.asarray(signal[first:last])
        edges = np.linspace(0, window.size, count + 1).astype(np.int64)[:-1]
        lows = np.minimum.reduceat(window, edges).astype(np.int64).tolist()
        highs = np.maximum.reduceat(window, edges).astype(np.int64).tolist()
    return {
        "start_s": round(first / rate, 6),
        "duration_s": round((last - first) / rate, 6),
        "bucket_s": (last - first) / rate / max(1, len(lows)) if lows else 0.0,
        "min_uv": lows,
        "max_uv": highs,
        "recording_duration_s": recording.duration_s,
    }
