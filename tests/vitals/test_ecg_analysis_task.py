"""The analysis task: queued → analysing → done or failed with a reason,
run any number of times with one result, and a flagged ECG alerting the
patient's doctors through the readings' alert path."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone, translation

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.notifications.models import Notification
from apps.notifications.rendering import notification_render
from apps.scheduling.models import Appointment
from apps.vitals import services_ecg, tasks
from apps.vitals.ecg import EcgSignal
from apps.vitals.models import Alert, EcgRecording, EcgStatus
from apps.vitals.services_ecg import (
    ecg_flag,
    ecg_recording_analyse,
    ecg_recording_upload,
    ecg_recordings_resume,
    viewer_signal,
)
from tests.vitals.ecg import records
from tests.vitals.ecg_support import (
    irregular_rhythm,
    private_storage,  # noqa: F401  # fixture
    regular_rhythm,
    stored_files,
    synthetic_ecg,
)

pytestmark = [pytest.mark.sqlite, pytest.mark.usefixtures("private_storage")]


def _upload(patient: User, data: bytes, *, by: User | None = None, name: str = "ecg.csv") -> EcgRecording:
    """Stored and queued; the task is left to the test (no on-commit run)."""
    return ecg_recording_upload(
        patient=patient, by=by or patient, file=SimpleUploadedFile(name, data), name=name
    ).recording


def _analysed(patient: User, data: bytes, **kwargs: Any) -> EcgRecording:
    recording = _upload(patient, data, **kwargs)
    ecg_recording_analyse(recording_id=recording.pk)
    recording.refresh_from_db()
    return recording


def test_the_upload_queues_the_task_after_commit(alice: User, deliver: Callable[[], Any]) -> None:
    with deliver() as callbacks:
        recording = _upload(alice, synthetic_ecg(regular_rhythm(70, 40)))
        assert EcgRecording.objects.get().status == EcgStatus.QUEUED
    assert len(callbacks) == 1
    recording.refresh_from_db()
    assert recording.status == EcgStatus.DONE
    assert recording.summary["heart_rate"]["mean_bpm"] == pytest.approx(70, abs=0.5)
    assert recording.analysis_started_at is not None and recording.analysed_at is not None


def test_the_status_shows_analysing_while_the_task_runs(alice: User, monkeypatch: pytest.MonkeyPatch) -> None:
    recording = _upload(alice, synthetic_ecg(regular_rhythm(70, 40)))
    seen: list[str] = []
    real = services_ecg.ecg_analyse

    def watching(signal: EcgSignal) -> Any:
        seen.append(EcgRecording.objects.get(pk=recording.pk).status)
        return real(signal)

    monkeypatch.setattr(services_ecg, "ecg_analyse", watching)
    assert tasks.ecg_analyse_task(recording.pk) == EcgStatus.DONE
    assert seen == [EcgStatus.ANALYSING]


def test_it_stores_the_r_peaks_and_the_viewers_signal_beside_the_original(alice: User, private_storage: Path) -> None:  # noqa: F811
    recording = _analysed(alice, synthetic_ecg(regular_rhythm(70, 40)))
    names = {path.name for path in stored_files(private_storage)}
    assert names == {"original", "signal.npy", "r-peaks.npy"}
    peaks = np.load(recording.r_peaks.path)
    assert peaks.dtype == np.int32 and peaks.size == recording.beat_count == 41
    signal = np.load(recording.signal.path)
    assert signal.dtype == np.int16
    assert recording.signal_rate_hz == 250.0
    assert signal.size == pytest.approx(recording.duration_s * 250, abs=1)
    # R peaks of 1.2 mV spikes: the filtered signal peaks near 1000 µV at them
    assert 600 < int(signal[peaks[5]]) < 1300


def test_running_it_again_changes_nothing(alice: User, bob: User, appointment: Appointment) -> None:
    recording = _analysed(alice, synthetic_ecg(irregular_rhythm(200)))
    before = (recording.summary, recording.signal.name, recording.analysed_at)
    events = AuditEvent.objects.count()
    assert ecg_recording_analyse(recording_id=recording.pk) == EcgStatus.DONE
    recording.refresh_from_db()
    assert (recording.summary, recording.signal.name, recording.analysed_at) == before
    assert AuditEvent.objects.count() == events
    assert Alert.objects.count() == 1
    assert Notification.objects.filter(recipient=bob).count() == 1


def test_a_recording_another_worker_is_analysing_is_left_alone(alice: User) -> None:
    recording = _upload(alice, synthetic_ecg(regular_rhythm(70, 40)))
    EcgRecording.objects.filter(pk=recording.pk).update(
        status=EcgStatus.ANALYSING, analysis_started_at=timezone.now() - timedelta(minutes=1), attempts=1
    )
    assert ecg_recording_analyse(recording_id=recording.pk) == EcgStatus.ANALYSING
    recording.refresh_from_db()
    assert (recording.status, recording.attempts) == (EcgStatus.ANALYSING, 1)


def test_a_recording_whose_worker_died_is_taken_over(alice: User) -> None:
    recording = _upload(alice, synthetic_ecg(regular_rhythm(70, 40)))
    EcgRecording.objects.filter(pk=recording.pk).update(
        status=EcgStatus.ANALYSING, analysis_started_at=timezone.now() - timedelta(minutes=20), attempts=1
    )
    assert ecg_recording_analyse(recording_id=recording.pk) == EcgStatus.DONE
    assert EcgRecording.objects.get(pk=recording.pk).attempts == 2


def test_it_gives_up_after_three_attempts_and_a_new_upload_retries(alice: User, deliver: Callable[[], Any]) -> None:
    data = synthetic_ecg(regular_rhythm(70, 40))
    recording = _upload(alice, data)
    EcgRecording.objects.filter(pk=recording.pk).update(
        status=EcgStatus.ANALYSING, analysis_started_at=timezone.now() - timedelta(hours=1), attempts=3
    )
    assert ecg_recording_analyse(recording_id=recording.pk) == EcgStatus.FAILED
    recording.refresh_from_db()
    assert recording.failure_code == "too_many_attempts"
    assert "failed several times" in recording.failure_message
    with deliver():
        again = _upload(alice, data)
    assert again.pk == recording.pk
    recording.refresh_from_db()
    assert recording.status == EcgStatus.DONE


def test_a_file_only_decoding_refuses_fails_with_its_reason_and_is_not_kept(alice: User, private_storage: Path) -> None:  # noqa: F811
    files = records.wfdb_files()
    truncated = records.zip_bytes(
        {"100.hea": files["100.hea"], "100.dat": files["100.dat"][: len(files["100.dat"]) // 2]}
    )
    recording = _analysed(alice, truncated, name="100.zip")
    assert recording.status == EcgStatus.FAILED
    assert recording.failure_code == "wfdb_truncated"  # the parser's own code
    assert set(recording.failure_messages) == {"en", "zh-hans"}
    assert recording.failure_message == recording.failure_messages["en"]
    with translation.override("zh-hans"):
        assert recording.failure_message == recording.failure_messages["zh-hans"]
    assert not recording.original and recording.summary is None
    assert stored_files(private_storage) == []
    assert (
        AuditEvent.objects.filter(object_type="ecg_analysis", outcome="failure", reason=recording.failure_code).count()
        == 1
    )


def test_an_error_of_ours_fails_with_a_reason_keeps_the_file_and_logs_no_data(
    alice: User, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(signal: EcgSignal) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(services_ecg, "ecg_analyse", broken)
    with caplog.at_level(logging.ERROR):
        recording = _analysed(alice, synthetic_ecg(regular_rhythm(70, 40)))
    assert (recording.status, recording.failure_code) == (EcgStatus.FAILED, "analysis_error")
    assert recording.original
    assert [record.getMessage() for record in caplog.records] == [f"ECG analysis of recording {recording.pk} failed"]


def test_a_missing_original_fails_with_a_reason(alice: User) -> None:
    recording = _upload(alice, synthetic_ecg(regular_rhythm(70, 40)))
    recording.original.delete(save=False)
    assert ecg_recording_analyse(recording_id=recording.pk) == EcgStatus.FAILED
    assert EcgRecording.objects.get(pk=recording.pk).failure_code == "original_missing"


def test_an_irregular_rhythm_alerts_the_doctor_in_the_app(alice: User, bob: User, appointment: Appointment) -> None:
    bob.phone = "+8613900000002"
    bob.save()
    recording = _analysed(alice, synthetic_ecg(irregular_rhythm(200)))
    assert recording.summary["af"]["irregular"] is True
    assert (recording.category, recording.severity) == ("ecg_irregular_rr", "urgent")
    alert = Alert.objects.get()
    assert (alert.ecg_recording, alert.reading, alert.patient, alert.severity) == (recording, None, alice, "urgent")
    sent = Notification.objects.get(recipient=bob, category="readings_alert")  # in the app only: urgent, not critical
    assert sent.channel == "in_app" and sent.urgent and sent.sensitive
    assert sent.context["link"] == f"/vitals/ecg/{recording.pk}/"
    text = notification_render(sent).text
    assert "Alice: ECG, Irregular heart rhythm on the ECG: possible atrial fibrillation (screening hint)" in text
    assert AuditEvent.objects.filter(object_type="alert", action="create").count() == 1


def test_a_critical_heart_rate_alerts_in_the_app_and_by_sms(
    alice: User, bob: User, appointment: Appointment, deliver: Callable[[], Any]
) -> None:
    bob.phone = "+8613900000002"
    bob.save()
    with deliver():
        recording = _analysed(alice, synthetic_ecg(regular_rhythm(160, 300)))
    assert (recording.category, recording.severity) == ("hr_very_fast", "critical")
    assert Alert.objects.get().severity == "critical"
    channels = Notification.objects.filter(recipient=bob).values_list("channel", flat=True)
    assert sorted(channels) == ["in_app", "sms"]


def test_a_normal_ecg_alerts_no_one(alice: User, bob: User, appointment: Appointment) -> None:
    recording = _analysed(alice, synthetic_ecg(regular_rhythm(70, 40)))
    assert (recording.category, recording.severity) == ("hr_normal", "normal")
    assert Alert.objects.count() == 0 and Notification.objects.count() == 0


def test_an_ecg_without_beats_needs_attention_and_alerts_no_one(
    alice: User, bob: User, appointment: Appointment
) -> None:
    noise = np.random.default_rng(1).normal(0, 0.01, 250 * 30)
    recording = _analysed(alice, records.generic_csv(noise, 250))
    assert recording.status == EcgStatus.DONE
    assert recording.severity == "attention"
    assert recording.category in {"ecg_no_beats", "ecg_poor_quality"}
    assert Alert.objects.count() == 0


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        ({"heart_rate": None}, ("ecg_no_beats", "attention")),
        ({"heart_rate": {"mean_bpm": 190}, "quality": {"level": "poor"}}, ("ecg_poor_quality", "attention")),
        (
            {"heart_rate": {"mean_bpm": 72}, "quality": {"level": "good"}, "af": {"irregular": True}},
            ("ecg_irregular_rr", "urgent"),
        ),
        (
            {"heart_rate": {"mean_bpm": 125}, "quality": {"level": "good"}, "af": {"irregular": True}},
            ("ecg_irregular_rr", "urgent"),
        ),
        (
            {"heart_rate": {"mean_bpm": 155}, "quality": {"level": "good"}, "af": {"irregular": True}},
            ("hr_very_fast", "critical"),
        ),
        (
            {"heart_rate": {"mean_bpm": 38}, "quality": {"level": "acceptable"}, "af": {"irregular": None}},
            ("hr_slow_marked", "urgent"),
        ),
        (
            {"heart_rate": {"mean_bpm": 72}, "quality": {"level": "good"}, "af": {"irregular": False}},
            ("hr_normal", "normal"),
        ),
    ],
)
def test_the_flag_is_the_worse_of_rate_and_rhythm(summary: dict[str, Any], expected: tuple[str, str]) -> None:
    flag = ecg_flag(summary)
    assert (flag.category, flag.severity) == expected


@pytest.mark.parametrize(
    ("rate_hz", "viewer_hz"), [(360.0, 360.0), (512.0, 256.0), (500.0, 250.0), (1000.0, 250.0), (128.0, 128.0)]
)
def test_the_viewers_signal_keeps_at_least_250_hz(rate_hz: float, viewer_hz: float) -> None:
    seconds = 20
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    signal = EcgSignal(
        samples_mv=np.sin(2 * np.pi * 5 * t), sample_rate_hz=rate_hz, lead="II", started_at=None, source_format="edf"
    )
    samples, rate = viewer_signal(signal)
    assert rate == viewer_hz
    assert samples.dtype == np.int16 and samples.size == pytest.approx(seconds * viewer_hz, abs=1)
    # a 5 Hz, 1 mV sine passes the 0.5-40 Hz band: about ±1000 µV away from the edges
    middle = samples[int(viewer_hz * 5) : int(viewer_hz * 15)]
    assert 950 < middle.max() < 1050 and -1050 < middle.min() < -950


def test_the_viewers_signal_is_the_same_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Filtered in 5-minute chunks with context: no seam where they meet."""
    mlii = records.record_100().leads_mv["MLII"][: 360 * 60]
    signal = EcgSignal(samples_mv=mlii, sample_rate_hz=360.0, lead="MLII", started_at=None, source_format="wfdb")
    whole, _rate = viewer_signal(signal)
    monkeypatch.setattr(services_ecg, "VIEWER_CHUNK_S", 7.0)
    chunked, _rate = viewer_signal(signal)
    assert whole.size == chunked.size
    assert np.max(np.abs(whole.astype(int) - chunked.astype(int))[360 * 5 : -360 * 5]) <= 3


def test_lost_analyses_are_queued_again(alice: User, monkeypatch: pytest.MonkeyPatch) -> None:
    queued = _upload(alice, synthetic_ecg(regular_rhythm(70, 40)))
    fresh = _upload(alice, synthetic_ecg(regular_rhythm(71, 40)))
    dead = _upload(alice, synthetic_ecg(regular_rhythm(72, 40)))
    now = timezone.now()
    EcgRecording.objects.filter(pk=queued.pk).update(created_at=now - timedelta(minutes=30))
    EcgRecording.objects.filter(pk=dead.pk).update(
        status=EcgStatus.ANALYSING, analysis_started_at=now - timedelta(minutes=30)
    )
    sent: list[int] = []
    monkeypatch.setattr(tasks.ecg_analyse_task, "delay", sent.append)
    assert sorted(ecg_recordings_resume(now=now)) == sorted([queued.pk, dead.pk])
    assert sorted(sent) == sorted([queued.pk, dead.pk])
    assert fresh.pk not in sent
