"""Uploading an ECG: the original kept byte for byte with its SHA-256 in
private storage, the analysis queued after commit and run, the same file
stored once, bad files and wrong people refused with nothing stored."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.accounts.services import consent_withdraw
from apps.audit.models import AuditEvent
from apps.scheduling.models import Appointment
from apps.vitals import views_ecg
from apps.vitals.models import EcgRecording, EcgStatus
from tests.vitals.ecg import records
from tests.vitals.ecg_support import (
    private_storage,  # noqa: F401  # fixture
    record_100_zip,
    regular_rhythm,
    stored_files,
    synthetic_ecg,
    upload,
)

Login = Callable[[User], Client]
pytestmark = [pytest.mark.sqlite, pytest.mark.usefixtures("private_storage")]


@pytest.fixture
def storage_dir(private_storage: Path) -> Path:  # noqa: F811  # the fixture imported above
    return private_storage


def test_alice_uploads_record_100_and_it_is_analysed(
    login: Login, alice: User, storage_dir: Path, deliver: Any
) -> None:
    data = record_100_zip()
    client = login(alice)
    with deliver():
        response = upload(client, data, name="100.zip")
        recording = EcgRecording.objects.get()
        assert recording.status == EcgStatus.QUEUED  # the task runs once the upload is committed
    assert response.status_code == 302
    assert response["Location"] == reverse("vitals:ecg_recording", args=[recording.pk])
    recording.refresh_from_db()
    assert recording.status == EcgStatus.DONE, recording.failure_messages
    assert (recording.file_format, recording.lead, recording.sample_rate_hz) == ("wfdb", "MLII", 360.0)
    assert recording.duration_s == pytest.approx(1805.56, abs=0.01)
    assert recording.summary["heart_rate"]["mean_bpm"] == pytest.approx(75.5, abs=1.0)
    assert recording.beat_count == pytest.approx(2273, abs=3)
    assert recording.summary["af"]["irregular"] is False
    assert (recording.category, recording.severity) == ("hr_normal", "normal")
    page = client.get(response["Location"]).content.decode()
    assert "Analysed" in page and "76/min on average" in page
    assert "Screening hint for the doctor, not a diagnosis" in page


def test_the_original_is_kept_byte_for_byte_with_its_sha256(login: Login, alice: User, storage_dir: Path) -> None:
    data = synthetic_ecg(regular_rhythm(70, 20))
    upload(login(alice), data, name="mine.csv")
    recording = EcgRecording.objects.get()
    assert recording.sha256 == hashlib.sha256(data).hexdigest()
    assert recording.size_bytes == len(data)
    assert recording.original_name == "mine.csv"
    with recording.original.open("rb") as stored:
        assert stored.read() == data
    assert AuditEvent.objects.filter(object_type="ecg_recording", action="create", patient=alice).count() == 1


def test_the_storage_is_private_and_its_names_unguessable(
    login: Login, alice: User, storage_dir: Path, client: Client
) -> None:
    upload(login(alice), synthetic_ecg(regular_rhythm(70, 20)), name="mine.csv")
    recording = EcgRecording.objects.get()
    path = Path(recording.original.path).resolve()
    assert path.is_relative_to(storage_dir.resolve())
    public_roots = [Path(settings.STATIC_ROOT), *map(Path, settings.STATICFILES_DIRS)]
    if settings.MEDIA_ROOT:
        public_roots.append(Path(settings.MEDIA_ROOT))
    for public in public_roots:
        assert not path.is_relative_to(public.resolve())
    # a random 128-bit key in the name, nothing of the patient's or the file's
    key = recording.storage_key
    assert len(key) == 32 and int(key, 16) >= 0
    assert recording.original.name == f"ecg/{key}/original"
    assert str(alice.pk) not in recording.original.name.replace(key, "")
    assert "mine" not in recording.original.name
    # nothing serves the storage: not what its url() makes of a name, nor other guesses
    name = recording.original.name
    for url in (recording.original.url, f"/{name}", f"/media/{name}", f"/static/{name}", f"/private/{name}"):
        assert login(alice).get(url).status_code == 404


def test_an_xhr_upload_answers_json(login: Login, alice: User) -> None:
    response = upload(login(alice), synthetic_ecg(regular_rhythm(70, 20)), name="mine.csv", xhr=True)
    recording = EcgRecording.objects.get()
    assert response.status_code == 201
    assert response.json() == {"url": reverse("vitals:ecg_recording", args=[recording.pk]), "created": True}


def test_the_same_file_twice_is_the_same_recording(login: Login, alice: User, storage_dir: Path) -> None:
    client = login(alice)
    data = synthetic_ecg(regular_rhythm(70, 20))
    first = upload(client, data, name="a.csv", xhr=True).json()
    second = upload(client, data, name="b.csv", xhr=True)
    assert second.status_code == 200
    assert second.json() == {"url": first["url"], "created": False}
    assert EcgRecording.objects.count() == 1
    assert len([path for path in stored_files(storage_dir) if path.name == "original"]) == 1
    followed = upload(client, data, name="c.csv", follow=True).content.decode()
    assert "This file was uploaded before" in followed


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _edf_without_ecg() -> bytes:
    record = records.record_100()
    seconds = record.leads_mv["MLII"][:3600]
    return records.edf_bytes({"Resp chest": seconds}, 360.0)


BAD_FILES = {
    "empty": (b"", "ecg.csv", "The file is empty."),
    "binary": (bytes(range(256)) * 64, "ecg.csv", "not an ECG file we read"),
    "zip_unsafe_path": (_zip({"../100.hea": b"100 1 360 3600\n"}), "ecg.zip", "outside its own folder"),
    "no_header": (_zip({"100.dat": b"\0" * 100}), "ecg.zip", "no WFDB header"),
    "edf_no_ecg_channel": (None, "ecg.edf", "has no ECG channel"),
    "text": (b"hello,world\n1,2\n", "ecg.csv", "not an ECG format we read"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_file_is_refused_with_a_clear_message_and_nothing_stored(
    case: str, login: Login, alice: User, storage_dir: Path
) -> None:
    data, name, message = BAD_FILES[case]
    if data is None:
        data = _edf_without_ecg()
    client = login(alice)
    response = upload(client, data, name=name)
    assert response.status_code == 400
    assert message in response.content.decode()
    answer = upload(client, data, name=name, xhr=True)
    assert answer.status_code == 400 and message in answer.json()["error"]
    assert EcgRecording.objects.count() == 0
    assert stored_files(storage_dir) == []


def test_a_refusal_comes_in_the_users_language(login: Login, alice: User) -> None:
    alice.language = "zh-hans"
    alice.save()
    answer = upload(login(alice), b"", name="ecg.csv", xhr=True)
    assert answer.status_code == 400
    assert answer.json()["error"] == "文件是空的。"  # the parser's message, from the zh-hans catalog


def test_an_oversize_body_is_refused_by_its_declared_length_before_it_is_read(
    login: Login, alice: User, storage_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = login(alice)
    monkeypatch.setattr(views_ecg, "MAX_FILE_BYTES", 10_000)
    monkeypatch.setattr(views_ecg, "UPLOAD_FORM_SLACK_BYTES", 1000)
    read: list[bool] = []
    monkeypatch.setattr(views_ecg._CappedUploadHandler, "receive_data_chunk", lambda *a: read.append(True))
    response = upload(client, b"1\n" * 10_000, name="big.csv", xhr=True)
    assert response.status_code == 413
    assert "larger than" in response.json()["error"]
    assert read == []  # the body was never parsed
    assert EcgRecording.objects.count() == 0 and stored_files(storage_dir) == []


def test_an_oversize_file_is_refused_while_it_is_read(
    login: Login, alice: User, storage_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A body whose length says nothing (chunked, or a lie) is counted as it is read."""
    client = login(alice)
    monkeypatch.setattr(views_ecg, "MAX_FILE_BYTES", 10_000)
    monkeypatch.setattr(views_ecg, "UPLOAD_FORM_SLACK_BYTES", 10**9)
    response = upload(client, b"sample_rate_hz=250\n" + b"0.1\n" * 10_000, name="big.csv", xhr=True)
    assert response.status_code == 413
    assert EcgRecording.objects.count() == 0 and stored_files(storage_dir) == []


def test_no_file_is_a_clear_error(login: Login, alice: User) -> None:
    response = login(alice).post(reverse("vitals:ecg_upload"), {}, headers={"X-Requested-With": "XMLHttpRequest"})
    assert response.status_code == 400
    assert response.json() == {"error": "Choose an ECG file."}


def test_the_upload_page_is_made_for_a_phone(login: Login, alice: User) -> None:
    page = login(alice).get(reverse("vitals:ecg_upload")).content.decode()
    assert 'type="file"' in page and "data-upload-bar" in page and "js/ecg-upload.js" in page
    assert "<script>" not in page and "onclick" not in page
    assert 'enctype="multipart/form-data"' in page


def test_the_upload_needs_the_csrf_token(alice: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = upload(client, synthetic_ecg(regular_rhythm(70, 20)), name="mine.csv")
    assert response.status_code == 403
    assert EcgRecording.objects.count() == 0


def test_a_patient_without_consent_is_sent_to_give_it(login: Login, alice: User) -> None:
    consent_withdraw(patient=alice, withdrawn_by=alice)
    response = upload(login(alice), synthetic_ecg(regular_rhythm(70, 20)), name="mine.csv")
    assert response.status_code == 302 and response["Location"] == reverse("accounts:consent")
    assert EcgRecording.objects.count() == 0


def test_carol_uploads_for_alice_and_sees_only_the_status(
    login: Login, alice: User, carol: User, appointment: Appointment, deliver: Any
) -> None:
    client = login(carol)
    with deliver():
        response = upload(client, synthetic_ecg(regular_rhythm(70, 40)), name="front-desk.csv", patient_id=alice.pk)
    recording = EcgRecording.objects.get()
    assert (recording.patient, recording.uploaded_by, recording.status) == (alice, carol, EcgStatus.DONE)
    page = client.get(response["Location"]).content.decode()
    assert "Analysed" in page and "goes to the patient and their doctors" in page
    assert (
        "Heart rate" not in page and "data-ecg-viewer" not in page and "original" not in page.lower().split("</h1>")[1]
    )


def test_bob_uploads_for_his_patient(login: Login, alice: User, bob: User, appointment: Appointment) -> None:
    upload(login(bob), synthetic_ecg(regular_rhythm(70, 20)), name="clinic.csv", patient_id=alice.pk)
    assert EcgRecording.objects.get().uploaded_by == bob


def test_staff_cannot_upload_without_the_patients_consent(
    login: Login, alice: User, bob: User, appointment: Appointment
) -> None:
    consent_withdraw(patient=alice, withdrawn_by=alice)
    response = upload(login(bob), synthetic_ecg(regular_rhythm(70, 20)), patient_id=alice.pk, xhr=True)
    assert response.status_code == 403 and "consented" in response.json()["error"]
    assert EcgRecording.objects.count() == 0


@pytest.mark.parametrize("who", ["mallory", "dave", "bob_without_appointment"])
def test_nobody_else_uploads_for_alice(who: str, request: pytest.FixtureRequest, login: Login, alice: User) -> None:
    user = request.getfixturevalue("bob" if who == "bob_without_appointment" else who)
    client = login(user)
    data = synthetic_ecg(regular_rhythm(70, 20))
    assert upload(client, data, patient_id=alice.pk).status_code == 404
    assert client.get(reverse("vitals:ecg_staff_upload", args=[alice.pk])).status_code == 404
    assert EcgRecording.objects.count() == 0


def test_mallory_uploads_only_for_herself(login: Login, mallory: User, alice: User) -> None:
    """The patient's own upload page takes no patient: Mallory's upload is Mallory's."""
    from apps.accounts.services import consent_give

    consent_give(patient=mallory, given_by=mallory)
    upload(login(mallory), synthetic_ecg(regular_rhythm(70, 20)), name="m.csv")
    assert EcgRecording.objects.get().patient == mallory


def test_anonymous_is_sent_to_sign_in(client: Client, alice: User) -> None:
    response = upload(client, synthetic_ecg(regular_rhythm(70, 20)))
    assert response.status_code == 302 and "/login" in response["Location"]
    response = upload(client, synthetic_ecg(regular_rhythm(70, 20)), patient_id=alice.pk)
    assert response.status_code == 302 and "/login" in response["Location"]
    assert EcgRecording.objects.count() == 0
