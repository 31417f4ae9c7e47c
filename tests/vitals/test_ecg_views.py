"""The recording page (status, summary, viewer), the viewer's JSON (a window
of samples, an overview), the original's download and the lists: what each
person may see, and the limits on what the browser gets."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.scheduling.models import Appointment
from apps.vitals.models import EcgRecording, EcgStatus
from apps.vitals.selectors_ecg import OVERVIEW_MAX_BUCKETS, SIGNAL_WINDOW_MAX_S
from apps.vitals.services_ecg import ecg_recording_analyse, ecg_recording_upload
from tests.vitals.ecg_support import (
    irregular_rhythm,
    private_storage,  # noqa: F401  # fixture
    regular_rhythm,
    synthetic_ecg,
)

Login = Callable[[User], Client]
pytestmark = [pytest.mark.sqlite, pytest.mark.usefixtures("private_storage")]
DATA = synthetic_ecg(regular_rhythm(70, 100))  # 87 s at 250 Hz


def _recording(patient: User, *, by: User | None = None, data: bytes = DATA, analyse: bool = True) -> EcgRecording:
    recording = ecg_recording_upload(
        patient=patient, by=by or patient, file=SimpleUploadedFile("ecg.csv", data), name="ecg.csv"
    ).recording
    if analyse:
        ecg_recording_analyse(recording_id=recording.pk)
        recording.refresh_from_db()
    return recording


def _urls(recording: EcgRecording) -> dict[str, str]:
    return {
        name: reverse(f"vitals:ecg_{name}", args=[recording.pk])
        for name in ("recording", "status", "signal", "overview", "original")
    }


@pytest.fixture
def recording(alice: User, appointment: Appointment) -> EcgRecording:
    return _recording(alice)


# --- Who may see what ---------------------------------------------------------------


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_the_patient_and_her_doctor_see_everything(
    who: str, request: pytest.FixtureRequest, login: Login, recording: EcgRecording
) -> None:
    client = login(request.getfixturevalue(who))
    urls = _urls(recording)
    page = client.get(urls["recording"])
    assert page.status_code == 200
    assert "Heart rate" in page.content.decode() and "data-ecg-viewer" in page.content.decode()
    for name in ("status", "signal", "overview", "original"):
        assert client.get(urls[name]).status_code == 200, name


@pytest.mark.parametrize("who", ["mallory", "dave", "carol"])
def test_anyone_else_gets_not_found_for_every_url(
    who: str, request: pytest.FixtureRequest, login: Login, recording: EcgRecording
) -> None:
    """Carol, admin of Alice's clinic, did not upload this one: clinical data is the doctors'."""
    client = login(request.getfixturevalue(who))
    for name, url in _urls(recording).items():
        assert client.get(url).status_code == 404, name
    assert client.get(reverse("vitals:ecg_patient", args=[recording.patient_id])).status_code == 404
    denied = AuditEvent.objects.filter(action="access_denied", actor=request.getfixturevalue(who))
    assert denied.count() >= 5


def test_guessing_ids_finds_nothing(login: Login, mallory: User, recording: EcgRecording) -> None:
    client = login(mallory)
    for recording_id in (recording.pk, recording.pk + 1, 0, 999999):
        for name in ("recording", "signal", "original"):
            assert client.get(reverse(f"vitals:ecg_{name}", args=[recording_id])).status_code == 404


def test_anonymous_is_sent_to_sign_in(client: Client, recording: EcgRecording) -> None:
    for name, url in _urls(recording).items():
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response["Location"], name


def test_the_uploader_sees_the_status_and_nothing_clinical(
    login: Login, alice: User, carol: User, appointment: Appointment
) -> None:
    recording = _recording(alice, by=carol)
    client = login(carol)
    urls = _urls(recording)
    page = client.get(urls["recording"]).content.decode()
    assert "Analysed" in page and "Heart rate" not in page and "Download the original" not in page
    assert client.get(urls["status"]).json()["status"] == "done"
    for name in ("signal", "overview", "original"):
        assert client.get(urls[name]).status_code == 404, name
    assert client.get(reverse("vitals:ecg_mine")).status_code == 404  # not a patient
    assert client.get(reverse("vitals:ecg_patient", args=[alice.pk])).status_code == 404


def test_a_doctor_whose_appointment_was_cancelled_sees_nothing(
    login: Login, bob: User, recording: EcgRecording, appointment: Appointment
) -> None:
    appointment.status = "cancelled"
    appointment.save()
    assert login(bob).get(_urls(recording)["recording"]).status_code == 404


# --- The recording page ---------------------------------------------------------------


def test_the_page_says_what_the_analysis_found_in_words_and_numbers(login: Login, recording: EcgRecording) -> None:
    page = login(recording.patient).get(_urls(recording)["recording"]).content.decode()
    assert "70/min on average (lowest 70, highest 70)" in page
    assert "101 beats in 1 min 28 s" in page
    assert "SDNN" in page and "RMSSD" in page and "pNN50" in page
    assert "Good (100 % of 10-second windows usable)" in page
    assert "Screening hint for the doctor, not a diagnosis" in page
    assert "Dash et al., 2009" in page and "sensitivity 94.4 %, specificity 95.1 %" in page
    assert "25 mm/s · 10 mm/mV" in page and "js/ecg-viewer.js" in page
    assert "<script>" not in page and "onclick" not in page


def test_an_irregular_rhythm_is_a_hint_for_the_doctor_and_the_patient_is_told(
    login: Login, alice: User, appointment: Appointment
) -> None:
    recording = _recording(alice, data=synthetic_ecg(irregular_rhythm(200)))
    page = login(alice).get(_urls(recording)["recording"]).content.decode()
    assert 'data-ecg-rhythm="irregular"' in page
    assert "possible atrial fibrillation" in page
    assert "Only a doctor can tell" in page
    assert "Your doctors have been alerted." in page


def test_a_queued_recording_shows_its_status_and_polls(login: Login, alice: User) -> None:
    recording = _recording(alice, analyse=False)
    client = login(alice)
    page = client.get(_urls(recording)["recording"]).content.decode()
    assert "Waiting for analysis" in page and 'data-finished="false"' in page
    assert "data-ecg-viewer" not in page
    assert client.get(_urls(recording)["status"]).json() == {
        "status": "queued",
        "label": "Waiting for analysis",
        "finished": False,
    }
    response = client.get(_urls(recording)["signal"])
    assert response.status_code == 409


def test_a_failed_recording_shows_its_reason(login: Login, alice: User) -> None:
    from tests.vitals.ecg import records

    files = records.wfdb_files()
    data = records.zip_bytes({"100.hea": files["100.hea"], "100.dat": files["100.dat"][:1000]})
    recording = _recording(alice, data=data)
    assert recording.status == EcgStatus.FAILED
    page = login(alice).get(_urls(recording)["recording"]).content.decode()
    assert "Could not be analysed" in page and recording.failure_message in page
    assert "Download the original" not in page  # a refused file is not kept


# --- The viewer's data ------------------------------------------------------------------


def test_a_window_of_samples_with_its_r_peaks(login: Login, recording: EcgRecording) -> None:
    answer = login(recording.patient).get(_urls(recording)["signal"], {"start_s": "10", "duration_s": "5"}).json()
    assert (answer["start_s"], answer["duration_s"], answer["sample_rate_hz"]) == (10.0, 5.0, 250.0)
    assert len(answer["samples_uv"]) == 1250 and all(isinstance(v, int) for v in answer["samples_uv"])
    # a beat every 60/70 s from 1 s on: those between 10 and 15 s
    expected = [round(1 + k * 60 / 70, 2) for k in range(200) if 10 <= 1 + k * 60 / 70 < 15]
    assert [round(peak, 2) for peak in answer["r_peaks_s"]] == pytest.approx(expected, abs=0.02)
    assert answer["capped"] is False


def test_a_window_is_capped(login: Login, recording: EcgRecording) -> None:
    answer = login(recording.patient).get(_urls(recording)["signal"], {"start_s": "0", "duration_s": "3600"}).json()
    assert answer["capped"] is True and answer["duration_s"] == SIGNAL_WINDOW_MAX_S
    assert len(answer["samples_uv"]) == SIGNAL_WINDOW_MAX_S * 250
    tail = login(recording.patient).get(_urls(recording)["signal"], {"start_s": "80", "duration_s": "60"}).json()
    assert tail["start_s"] + tail["duration_s"] == pytest.approx(recording.duration_s, abs=0.01)
    beyond = login(recording.patient).get(_urls(recording)["signal"], {"start_s": "5000"}).json()
    assert beyond["samples_uv"] == [] and beyond["r_peaks_s"] == []


@pytest.mark.parametrize("bad", [{"start_s": "abc"}, {"duration_s": "nan"}, {"start_s": "-1"}, {"duration_s": "inf"}])
def test_bad_window_parameters_are_a_clear_error(bad: dict[str, str], login: Login, recording: EcgRecording) -> None:
    response = login(recording.patient).get(_urls(recording)["signal"], bad)
    assert response.status_code == 400
    assert "must be a number of seconds" in response.json()["error"]


def test_the_overview_is_min_max_pairs_and_bounded(login: Login, recording: EcgRecording) -> None:
    client = login(recording.patient)
    answer = client.get(_urls(recording)["overview"], {"buckets": "100"}).json()
    assert len(answer["min_uv"]) == len(answer["max_uv"]) == 100
    assert all(low <= high for low, high in zip(answer["min_uv"], answer["max_uv"], strict=True))
    assert max(answer["max_uv"]) > 800  # the R waves
    assert answer["duration_s"] == pytest.approx(recording.duration_s, abs=0.01)
    many = client.get(_urls(recording)["overview"], {"buckets": "1000000"})
    assert len(many.json()["min_uv"]) == OVERVIEW_MAX_BUCKETS
    assert len(many.content) < 40_000
    assert len(client.get(_urls(recording)["overview"]).json()["min_uv"]) == 600


def test_the_viewers_data_is_private_and_audited(login: Login, recording: EcgRecording) -> None:
    client = login(recording.patient)
    response = client.get(_urls(recording)["signal"])
    assert response["Cache-Control"] == "private, no-store"
    client.get(_urls(recording)["overview"])
    assert AuditEvent.objects.filter(object_type="ecg_signal", action="view").count() == 2


# --- The original -------------------------------------------------------------------------


def test_the_original_downloads_byte_for_byte_as_an_attachment(
    login: Login, bob: User, recording: EcgRecording
) -> None:
    response = login(bob).get(_urls(recording)["original"])
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == DATA
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == 'attachment; filename="ecg.csv"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"
    event = AuditEvent.objects.get(object_type="ecg_original")
    assert (event.action, event.actor, event.patient) == ("export", bob, recording.patient)


def test_an_odd_file_name_cannot_break_the_header(login: Login, alice: User) -> None:
    recording = ecg_recording_upload(
        patient=alice, by=alice, file=SimpleUploadedFile("x", DATA), name='..\\..\\evil"\r\nX-Bad: 1.csv'
    ).recording
    response = login(alice).get(_urls(recording)["original"])
    assert "X-Bad" not in response
    assert "\n" not in response["Content-Disposition"] and ".." not in recording.original_name


# --- Lists ---------------------------------------------------------------------------------


def test_my_ecgs_lists_mine_with_their_results(login: Login, alice: User, recording: EcgRecording) -> None:
    page = login(alice).get(reverse("vitals:ecg_mine")).content.decode()
    assert reverse("vitals:ecg_recording", args=[recording.pk]) in page
    assert "70/min" in page and "Upload an ECG" in page


def test_bob_lists_his_patients_ecgs(login: Login, bob: User, alice: User, recording: EcgRecording) -> None:
    page = login(bob).get(reverse("vitals:ecg_patient", args=[alice.pk])).content.decode()
    assert reverse("vitals:ecg_recording", args=[recording.pk]) in page
    assert reverse("vitals:ecg_staff_upload", args=[alice.pk]) in page


def test_the_list_costs_the_same_queries_for_more_rows(login: Login, alice: User, appointment: Appointment) -> None:
    client = login(alice)
    _recording(alice, analyse=False)
    client.get(reverse("vitals:ecg_mine"))
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("vitals:ecg_mine"))
    for beats in range(21, 41):
        _recording(alice, data=synthetic_ecg(regular_rhythm(70, beats)), analyse=False)
    with CaptureQueriesContext(connection) as more:
        client.get(reverse("vitals:ecg_mine"))
    assert len(more.captured_queries) == len(few.captured_queries)


def test_the_upload_is_linked_from_my_readings(login: Login, alice: User) -> None:
    page = login(alice).get(reverse("vitals:mine")).content.decode()
    assert reverse("vitals:ecg_mine") in page


def test_bobs_view_of_alices_readings_links_her_ecgs(
    login: Login, bob: User, alice: User, appointment: Appointment
) -> None:
    page = login(bob).get(reverse("vitals:patient_readings", args=[alice.pk])).content.decode()
    assert reverse("vitals:ecg_patient", args=[alice.pk]) in page
