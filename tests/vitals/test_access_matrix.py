"""Every vitals URL (pages, JSON, file downloads, the readings API) against
someone who may not use it: anonymous visitors are sent to sign in (the API
answers 401/403); Mallory, a patient with no tie to Alice, and Dave, a doctor
of her clinic who never saw her, get "not found" for every URL that names
Alice or one of her records, whatever the method,
and nothing is written; the pages that are a caller's own show Mallory none
of Alice's. A new URL in the ``vitals`` namespace fails
``test_it_covers_every_vitals_url`` until it is added to the matrix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import get_resolver, reverse

from apps.accounts.models import User
from apps.accounts.services import consent_give
from apps.accounts.tokens import token_create
from apps.scheduling.models import Appointment
from apps.vitals.models import EcgRecording, Reading
from apps.vitals.services_ecg import ecg_recording_analyse, ecg_recording_upload
from tests.vitals.conftest import record
from tests.vitals.ecg_support import (
    private_storage,  # noqa: F401  # fixture
    regular_rhythm,
    synthetic_ecg,
)

Login = Callable[[User], Client]
pytestmark = [pytest.mark.sqlite, pytest.mark.usefixtures("private_storage", "appointment")]

ECG = synthetic_ecg(regular_rhythm(70, 30))
API = "/api/v1/readings/"
# Alice's reading, as the pages and the chart would show it.
ALICES_VALUES = ("151/97", "151")
ALICES_ECG_NAME = "alices-ecg.csv"


@dataclass(frozen=True)
class Records:
    alice: User
    reading: Reading
    recording: EcgRecording


@dataclass(frozen=True)
class Url:
    """How to reach one URL name, whose it is and which methods it takes."""

    args: Callable[[Records], list[Any]]
    alices: bool  # names Alice or one of her records (else: the caller's own)
    post: bool  # takes POST (else GET only)
    get: bool = True  # takes GET (else POST only)


def _bp_form() -> dict[str, str]:
    return {"systolic": "140", "diastolic": "90", "pulse": "70", "measured_at": "2026-12-01T07:55", "note": ""}


def _csv() -> SimpleUploadedFile:
    return SimpleUploadedFile(
        "readings.csv", b"measured_at,kind,systolic,diastolic,pulse\n2026-11-30 08:00,blood_pressure,140,90,70\n"
    )


def _post_data(name: str) -> dict[str, Any]:
    if name in ("staff_entry", "entry"):
        return _bp_form()
    if name in ("staff_import", "import"):
        return {"file": _csv()}
    if name in ("staff_import_confirm", "import_confirm"):
        return {"token": "x"}
    if name in ("ecg_staff_upload", "ecg_upload"):
        return {"file": SimpleUploadedFile("ecg.csv", ECG)}
    return {}


def _patient(records: Records) -> list[Any]:
    return [records.alice.pk]


def _recording(records: Records) -> list[Any]:
    return [records.recording.pk]


def _none(records: Records) -> list[Any]:
    return []


MATRIX: dict[str, Url] = {
    # The caller's own pages.
    "mine": Url(_none, alices=False, post=False),
    "entry": Url(lambda r: ["blood_pressure"], alices=False, post=True),
    "import": Url(_none, alices=False, post=True),
    "import_confirm": Url(_none, alices=False, post=True, get=False),
    "import_template": Url(_none, alices=False, post=False),
    "chart": Url(_none, alices=False, post=False),
    "patients": Url(_none, alices=False, post=False),
    "ecg_mine": Url(_none, alices=False, post=False),
    "ecg_upload": Url(_none, alices=False, post=True),
    # Alice's, by her id or a record's.
    "reading": Url(lambda r: [r.reading.pk], alices=True, post=False),
    "patient_readings": Url(_patient, alices=True, post=False),
    "staff_entry": Url(lambda r: [r.alice.pk, "blood_pressure"], alices=True, post=True),
    "staff_import": Url(_patient, alices=True, post=True),
    "staff_import_confirm": Url(_patient, alices=True, post=True, get=False),
    "patient_chart": Url(_patient, alices=True, post=False),
    "ecg_recording": Url(_recording, alices=True, post=False),
    "ecg_status": Url(_recording, alices=True, post=False),
    "ecg_signal": Url(_recording, alices=True, post=False),
    "ecg_overview": Url(_recording, alices=True, post=False),
    "ecg_original": Url(_recording, alices=True, post=False),
    "ecg_patient": Url(_patient, alices=True, post=False),
    "ecg_staff_upload": Url(_patient, alices=True, post=True),
}
ALICES = sorted(name for name, url in MATRIX.items() if url.alices)
OWN = sorted(name for name, url in MATRIX.items() if not url.alices)


@pytest.fixture
def records(alice: User, appointment: Appointment) -> Records:
    reading = record(alice, values={"systolic": 151, "diastolic": 97, "pulse": 71}).reading
    recording = ecg_recording_upload(
        patient=alice, by=alice, file=SimpleUploadedFile(ALICES_ECG_NAME, ECG), name=ALICES_ECG_NAME
    ).recording
    ecg_recording_analyse(recording_id=recording.pk)
    return Records(alice=alice, reading=reading, recording=recording)


def _url(name: str, records: Records) -> str:
    return reverse(f"vitals:{name}", args=MATRIX[name].args(records))


def _counts() -> tuple[int, int]:
    return Reading.objects.count(), EcgRecording.objects.count()


def test_it_covers_every_vitals_url() -> None:
    resolver = get_resolver()
    names = {name for name in resolver.namespace_dict["vitals"][1].reverse_dict if isinstance(name, str)}
    assert names == set(MATRIX)


@pytest.mark.parametrize("name", sorted(MATRIX))
@pytest.mark.parametrize("method", ["get", "post"])
def test_it_sends_anonymous_visitors_to_sign_in(name: str, method: str, client: Client, records: Records) -> None:
    before = _counts()
    response = getattr(client, method)(_url(name, records), _post_data(name) if method == "post" else {})
    assert response.status_code == 302, (name, method, response.status_code)
    assert response["Location"].startswith(reverse("account_login")), name
    assert _counts() == before


@pytest.mark.parametrize("name", ALICES)
@pytest.mark.parametrize("who", ["mallory", "dave"])
def test_it_answers_outsiders_not_found_for_every_url_of_alices(
    name: str, who: str, request: pytest.FixtureRequest, login: Login, mallory: User, records: Records
) -> None:
    """Mallory, a patient with no tie to Alice; Dave, a doctor of her clinic who never saw her."""
    consent_give(patient=mallory, given_by=mallory)  # a patient like any other, in the app
    client = login(request.getfixturevalue(who))
    before = _counts()
    url = _url(name, records)
    # A view may refuse a method it does not take (405) before it looks anything up: that tells nothing.
    response = client.get(url)
    assert response.status_code == 404 or (response.status_code == 405 and not MATRIX[name].get), name
    response = client.post(url, _post_data(name))
    assert response.status_code == 404 or (response.status_code == 405 and not MATRIX[name].post), name
    assert _counts() == before


@pytest.mark.parametrize("name", ["ecg_recording", "ecg_signal", "ecg_overview", "ecg_original", "reading"])
def test_it_finds_nothing_at_guessed_ids(name: str, login: Login, mallory: User, records: Records) -> None:
    client = login(mallory)
    own = records.reading.pk if name == "reading" else records.recording.pk
    for guess in (own, own + 1, own - 1, 0, 2**31 - 1):
        assert client.get(reverse(f"vitals:{name}", args=[guess])).status_code == 404, (name, guess)


@pytest.mark.parametrize("name", OWN)
def test_it_shows_mallory_none_of_alices_on_her_own_pages(
    name: str, login: Login, mallory: User, records: Records
) -> None:
    consent_give(patient=mallory, given_by=mallory)
    response = login(mallory).get(_url(name, records), {"period": "all"})
    # 404: the staff's chooser, for a patient; 405: the import's confirmation takes only POST
    assert response.status_code in (200, 404) or (response.status_code == 405 and not MATRIX[name].get), name
    body = b"".join(response.streaming_content) if response.streaming else response.content
    text = body.decode("utf-8", "replace")
    for value in ALICES_VALUES:
        assert value not in text, name
    assert ALICES_ECG_NAME not in text
    assert records.alice.full_name not in text


def test_it_refuses_the_api_to_anonymous_and_to_mallory(client: Client, mallory: User, records: Records) -> None:
    consent_give(patient=mallory, given_by=mallory)
    before = _counts()
    body = {
        "patient": records.alice.pk,
        "kind": "blood_pressure",
        "values": {"systolic": 140, "diastolic": 90},
        "measured_at": "2026-12-01T07:55:00+08:00",
    }
    assert client.get(API).status_code in (401, 403)
    assert client.post(API, body, content_type="application/json").status_code in (401, 403)
    _, raw = token_create(user=mallory, name="gateway", expires_in_days=1)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    assert client.get(API, {"patient": records.alice.pk}, **auth).status_code == 404
    assert client.post(API, body, content_type="application/json", **auth).status_code == 404
    assert client.post(API, [body], content_type="application/json", **auth).status_code == 404
    mine = client.get(API, **auth).json()
    assert mine == []
    assert _counts() == before
