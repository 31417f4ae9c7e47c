"""ECG recordings: upload, analysis, and the alert a flagged one opens.

``ecg_recording_upload`` checks access, consent, size and format (without
decoding), keeps the original byte for byte in private storage with its
SHA-256, and queues the analysis once the transaction commits; the same
file uploaded again by (or for) the same patient is the recording already
made. ``ecg_recording_analyse`` (the Celery task's body) decodes the
original, analyses it, writes the filtered signal and the R peaks beside it
and flags the result; a refused file fails with its reason and its original
is deleted. docs/ecg-recordings.md has the whole story.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import PurePath
from typing import Any

import numpy as np
from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from scipy import signal as scipy_signal

from apps.accounts.models import User
from apps.accounts.selectors import consent_is_current
from apps.audit.models import AuditAction, AuditOutcome
from apps.audit.services import audit_access_denied, audit_record
from apps.vitals.ecg import MAX_FILE_BYTES, EcgAnalysis, EcgFileError, EcgSignal, ecg_analyse, ecg_file_read
from apps.vitals.ecg.analysis import BANDPASS_HZ, BANDPASS_ORDER
from apps.vitals.ecg_upload import ecg_format_detect
from apps.vitals.flags import ALERTING, Flag, Severity, flag_heart_rate
from apps.vitals.models import Alert, EcgRecording, EcgStatus
from apps.vitals.selectors import reading_entry_allowed
from apps.vitals.services import alert_notify

logger = logging.getLogger(__name__)

# The viewer's signal: band-passed like the analysis (0.5-40 Hz), then kept
# at the original rate or decimated by a whole factor to no less than this,
# as int16 µV (±32.7 mV; an ECG stays within a few mV).
VIEWER_MIN_RATE_HZ = 250.0
VIEWER_CHUNK_S = 300.0
VIEWER_CONTEXT_S = 5.0
INT16_MAX = 32767
# A worker that took a recording and has not finished after this long died
# (the task's hard time limit is shorter); another may take it over.
ANALYSIS_STALE_AFTER = timedelta(minutes=15)
# A recording still queued after this long lost its broker message.
QUEUED_RESUME_AFTER = timedelta(minutes=10)
MAX_ATTEMPTS = 3
# Failures worth another try when the same file is uploaded again.
RETRYABLE_FAILURES = frozenset({"analysis_error", "too_many_attempts"})


class EcgUploadRefused(Exception):
    """Nothing was stored. ``code``: not_found (no access; answer "not
    found"), no_consent, or the file's refusal code (too_large, empty,
    unknown_format, zip_unsafe_path…) with a translated ``message``."""

    def __init__(self, code: str, message: str = "") -> None:
        self.code = code
        self.message = message
        super().__init__(code)


@dataclass(frozen=True)
class EcgUploaded:
    recording: EcgRecording
    created: bool  # False: this file was uploaded for the patient before


def _original_name_clean(name: str) -> str:
    base = PurePath(name.replace("\\", "/")).name.strip()
    cleaned = "".join(char for char in base if char.isprintable() and char not in '"<>')
    return cleaned[-255:] or "ecg"


def _file_bytes(file: File[Any]) -> bytes:
    """The upload's bytes, never more than the limit plus one."""
    file.seek(0)
    data = file.read(MAX_FILE_BYTES + 1)
    assert isinstance(data, bytes)
    return data


def ecg_recording_upload(*, patient: User, by: User, file: File[Any], name: str) -> EcgUploaded:
    """Store one uploaded ECG file of ``patient`` sent by ``by`` (the patient,
    a doctor who sees their record, or the admin of a clinic they are booked
    at) and queue its analysis. Raises EcgUploadRefused, storing nothing."""
    if not reading_entry_allowed(user=by, patient=patient):
        audit_access_denied(actor=by, object_type="ecg_recordings", object_id=patient.pk)
        raise EcgUploadRefused("not_found")
    if not consent_is_current(patient=patient):
        raise EcgUploadRefused("no_consent", str(_("The patient has not consented to the processing of health data.")))
    data = _file_bytes(file)
    try:
        file_format = ecg_format_detect(data)
    except EcgFileError as error:
        raise EcgUploadRefused(error.code, error.message) from None
    sha256 = hashlib.sha256(data).hexdigest()
    earlier = EcgRecording.objects.filter(patient=patient, sha256=sha256).first()
    if earlier is not None:
        _retry_if_worth_it(earlier)
        return EcgUploaded(recording=earlier, created=False)
    storage_key = secrets.token_hex(16)
    stored_name = default_storage.save(f"ecg/{storage_key}/original", ContentFile(data))
    try:
        with transaction.atomic():
            recording = EcgRecording.objects.create(
                patient=patient,
                uploaded_by=by,
                storage_key=storage_key,
                original=stored_name,
                original_name=_original_name_clean(name),
                size_bytes=len(data),
                sha256=sha256,
                file_format=file_format,
            )
            audit_record(
                action=AuditAction.CREATE,
                actor=by,
                object_type="ecg_recording",
                object_id=recording.pk,
                patient=patient,
            )
            _analysis_enqueue_on_commit(recording.pk)
    except IntegrityError:  # the same file, stored by a concurrent request
        default_storage.delete(stored_name)
        return EcgUploaded(recording=EcgRecording.objects.get(patient=patient, sha256=sha256), created=False)
    except BaseException:
        default_storage.delete(stored_name)
        raise
    return EcgUploaded(recording=recording, created=True)


def _analysis_enqueue_on_commit(recording_id: int) -> None:
    from apps.vitals.tasks import ecg_analyse_task

    transaction.on_commit(lambda: ecg_analyse_task.delay(recording_id))


def _retry_if_worth_it(recording: EcgRecording) -> None:
    """A file uploaded again whose analysis failed for a reason of ours (not
    of the file) is analysed again."""
    if recording.status != EcgStatus.FAILED or recording.failure_code not in RETRYABLE_FAILURES:
        return
    if not recording.original:
        return
    with transaction.atomic():
        updated = EcgRecording.objects.filter(pk=recording.pk, status=EcgStatus.FAILED).update(
            status=EcgStatus.QUEUED, failure_code="", failure_messages={}, attempts=0
        )
        if updated:
            _analysis_enqueue_on_commit(recording.pk)
    recording.refresh_from_db()


# --- Analysis --------------------------------------------------------------------------


def _messages_in_every_language(message: Callable[[], str | Promise]) -> dict[str, str]:
    texts = {}
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            texts[code] = str(message())
    return texts


FAILURES: dict[str, Promise] = {
    "original_missing": _("The uploaded file is missing from storage. Please upload it again."),
    "analysis_error": _("The analysis failed because of an error on our side. Upload the file again to retry."),
    "too_many_attempts": _("The analysis failed several times. Upload the file again to retry."),
}


def _fail(recording_id: int, code: str, messages: dict[str, str], *, delete_original: bool = False) -> None:
    with transaction.atomic():
        recording = EcgRecording.objects.select_for_update().get(pk=recording_id)
        if delete_original and recording.original:
            recording.original.delete(save=False)
        recording.status = EcgStatus.FAILED
        recording.failure_code = code
        recording.failure_messages = messages
        recording.analysed_at = timezone.now()
        recording.save(
            update_fields=["status", "failure_code", "failure_messages", "analysed_at", "original"],
        )
        audit_record(
            action=AuditAction.UPDATE,
            object_type="ecg_analysis",
            object_id=recording.pk,
            patient=recording.patient,
            outcome=AuditOutcome.FAILURE,
            reason=code,
            role="system",
        )


def _claim(recording_id: int, now: datetime) -> EcgRecording | None:
    """Take the recording for analysis, or None when it is finished or
    another worker has it. Committed at once: the status shows."""
    with transaction.atomic():
        recording = EcgRecording.objects.select_for_update().filter(pk=recording_id).first()
        if recording is None or recording.is_finished:
            return None
        started = recording.analysis_started_at
        if recording.status == EcgStatus.ANALYSING and started and now - started < ANALYSIS_STALE_AFTER:
            return None
        recording.status = EcgStatus.ANALYSING
        recording.analysis_started_at = now
        recording.attempts += 1
        recording.save(update_fields=["status", "analysis_started_at", "attempts"])
        return recording


def ecg_recording_analyse(*, recording_id: int, now: datetime | None = None) -> str:
    """Decode, analyse, store and flag one recording; the task's body. Safe
    to run any number of times: a finished recording is left alone, one
    another worker is analysing too. Returns the status it leaves."""
    recording = _claim(recording_id, now or timezone.now())
    if recording is None:
        current = EcgRecording.objects.filter(pk=recording_id).values_list("status", flat=True).first()
        return current or "missing"
    if recording.attempts > MAX_ATTEMPTS:
        _fail(recording.pk, "too_many_attempts", _messages_in_every_language(lambda: FAILURES["too_many_attempts"]))
        return EcgStatus.FAILED
    try:
        with recording.original.open("rb") as original:
            data = original.read()
    except (OSError, ValueError):
        _fail(recording.pk, "original_missing", _messages_in_every_language(lambda: FAILURES["original_missing"]))
        return EcgStatus.FAILED
    try:
        ecg = ecg_file_read(data)
    except EcgFileError as error:
        # The file is refused: its reason is shown, and nothing of it is kept.
        refusal = error
        _fail(recording.pk, refusal.code, _messages_in_every_language(lambda: refusal.message), delete_original=True)
        return EcgStatus.FAILED
    del data
    try:
        analysis = ecg_analyse(ecg)
        _derived_files_write(recording, ecg, analysis)
    except Exception:
        # No health data in the log: the recording's id and the traceback.
        logger.exception("ECG analysis of recording %s failed", recording.pk)
        _fail(recording.pk, "analysis_error", _messages_in_every_language(lambda: FAILURES["analysis_error"]))
        return EcgStatus.FAILED
    return _results_store(recording, ecg, analysis)


def _viewer_decimation(sample_rate_hz: float) -> int:
    return max(1, int(sample_rate_hz // VIEWER_MIN_RATE_HZ))


def viewer_signal(ecg: EcgSignal) -> tuple[np.ndarray[Any, np.dtype[np.int16]], float]:
    """The signal the viewer draws: band-passed 0.5-40 Hz (zero phase, in
    5-minute chunks with 5 s of context, so memory stays small for 24 h),
    decimated by a whole factor, in µV as int16. Returns it and its rate."""
    fs = ecg.sample_rate_hz
    step = _viewer_decimation(fs)
    high = min(BANDPASS_HZ[1], 0.45 * fs / step)
    sos = scipy_signal.butter(BANDPASS_ORDER, (BANDPASS_HZ[0], high), btype="bandpass", fs=fs, output="sos")
    samples = ecg.samples_mv
    total = samples.size
    out = np.empty((total + step - 1) // step, dtype=np.int16)
    chunk = round(VIEWER_CHUNK_S * fs / step) * step
    context = round(VIEWER_CONTEXT_S * fs)
    for core_start in range(0, total, chunk):
        core_end = min(total, core_start + chunk)
        start = max(0, core_start - context)
        end = min(total, core_end + context)
        filtered = scipy_signal.sosfiltfilt(sos, samples[start:end])
        core = filtered[core_start - start : core_end - start : step] * 1000.0
        np.clip(np.rint(core), -INT16_MAX, INT16_MAX, out=core)
        out[core_start // step : core_start // step + core.size] = core.astype(np.int16)
    return out, fs / step


def _derived_files_write(recording: EcgRecording, ecg: EcgSignal, analysis: EcgAnalysis) -> None:
    """The viewer's signal and the R peaks, beside the original (replacing
    those of an earlier attempt). Plain .npy: the viewer's endpoints read
    the window they need through a memory map."""
    signal_uv, signal_rate_hz = viewer_signal(ecg)
    peaks = analysis.r_peaks.astype(np.int32)
    for field, array in (("signal", signal_uv), ("r_peaks", peaks)):
        name = f"ecg/{recording.storage_key}/{field.replace('_', '-')}.npy"
        default_storage.delete(name)
        with tempfile.TemporaryFile() as temporary:
            np.save(temporary, array, allow_pickle=False)
            temporary.seek(0)
            stored = default_storage.save(name, File(temporary))
        setattr(recording, field, stored)
    recording.signal_rate_hz = signal_rate_hz


def _recorded_at(ecg: EcgSignal, patient: User) -> datetime | None:
    """The recording's start: as the file says when it gives its offset, else
    (EDF, WFDB: the recorder's local time) in the patient's time zone."""
    started = ecg.started_at
    if started is None:
        return None
    if timezone.is_aware(started):
        return started
    import zoneinfo

    try:
        zone = zoneinfo.ZoneInfo(patient.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
    return timezone.make_aware(started, zone)


def ecg_flag(summary: dict[str, Any]) -> Flag:
    """The recording's category and severity: the worse of the heart-rate
    rule readings use (on the mean rate) and the RR-irregularity screen
    (urgent when positive: a doctor should look today). A recording too
    noisy to judge, or without beats, needs attention and alerts no one."""
    quality = (summary.get("quality") or {}).get("level")
    heart_rate = summary.get("heart_rate")
    if not heart_rate:
        return Flag("ecg_no_beats", Severity.ATTENTION, "ecg")
    if quality == "poor":
        return Flag("ecg_poor_quality", Severity.ATTENTION, "ecg")
    rate = flag_heart_rate(rate_per_min=Decimal(str(round(heart_rate["mean_bpm"]))))
    flag = Flag(rate.category, rate.severity, "ecg")
    if (summary.get("af") or {}).get("irregular"):
        rhythm = Flag("ecg_irregular_rr", Severity.URGENT, "ecg")
        if not flag.worse_than(rhythm):  # on a tie the rhythm, which says more
            flag = rhythm
    return flag


def _results_store(recording: EcgRecording, ecg: EcgSignal, analysis: EcgAnalysis) -> str:
    summary = analysis.summary()
    flag = ecg_flag(summary)
    with transaction.atomic():
        current = EcgRecording.objects.select_for_update().get(pk=recording.pk)
        if current.status != EcgStatus.ANALYSING:  # pragma: no cover - another worker finished first
            return current.status
        current.status = EcgStatus.DONE
        current.failure_code = ""
        current.failure_messages = {}
        current.sample_rate_hz = ecg.sample_rate_hz
        current.duration_s = ecg.duration_s
        current.lead = ecg.lead[:32]
        current.recorded_at = _recorded_at(ecg, current.patient)
        current.summary = summary
        current.beat_count = analysis.beat_count
        current.category = flag.category
        current.severity = flag.severity
        current.signal = recording.signal
        current.signal_rate_hz = recording.signal_rate_hz
        current.r_peaks = recording.r_peaks
        current.analysed_at = timezone.now()
        current.save()
        audit_record(
            action=AuditAction.CREATE,
            object_type="ecg_analysis",
            object_id=current.pk,
            patient=current.patient,
            role="system",
        )
        if flag.severity in ALERTING:
            _ecg_alert_open(current)
    return EcgStatus.DONE


def _ecg_alert_open(recording: EcgRecording) -> Alert:
    """The alert of a flagged recording (one, however often the analysis
    runs), and its messages to the patient's doctors."""
    alert, created = Alert.objects.get_or_create(
        ecg_recording=recording, defaults={"patient": recording.patient, "severity": recording.severity}
    )
    if created:
        audit_record(
            action=AuditAction.CREATE, object_type="alert", object_id=alert.pk, patient=recording.patient, role="system"
        )
    alert_notify(
        alert=alert,
        kind="ecg",
        category=recording.category,
        measured_at=recording.recorded_at or recording.created_at,
        link=reverse("vitals:ecg_recording", args=[recording.pk]),
        idempotency_prefix="ecg-alert",
    )
    return alert


def ecg_recordings_resume(*, now: datetime | None = None) -> list[int]:
    """Queue again the analyses whose broker message was lost (queued for
    long) or whose worker died (analysing for long); for Celery beat."""
    now = now or timezone.now()
    stuck = EcgRecording.objects.filter(
        status=EcgStatus.QUEUED, created_at__lt=now - QUEUED_RESUME_AFTER
    ) | EcgRecording.objects.filter(status=EcgStatus.ANALYSING, analysis_started_at__lt=now - ANALYSIS_STALE_AFTER)
    ids = list(stuck.values_list("pk", flat=True)[:100])
    from apps.vitals.tasks import ecg_analyse_task

    for recording_id in ids:
        ecg_analyse_task.delay(recording_id)
    return ids
