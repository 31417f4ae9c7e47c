"""POST and GET /api/v1/readings/ with personal access tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from apps.accounts.models import User
from apps.accounts.tokens import token_create
from apps.scheduling.models import Appointment
from apps.vitals.models import Alert, Reading
from tests.vitals.conftest import NOW, record

URL = "/api/v1/readings/"
pytestmark = pytest.mark.sqlite


def _bearer(user: User) -> dict[str, str]:
    _, raw = token_create(user=user, name="gateway", expires_in_days=30)
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def _post(client: Client, body: Any, user: User) -> Any:
    return client.post(URL, body, content_type="application/json", **_bearer(user))


def _bp(**extra: Any) -> dict[str, Any]:
    body = {
        "kind": "blood_pressure",
        "values": {"systolic": 142, "diastolic": 91, "pulse": 72},
        "measured_at": (NOW - timedelta(minutes=3)).isoformat(),
        "source": "device",
    }
    body.update(extra)
    return body


def test_a_device_posts_one_reading(client: Client, alice: User) -> None:
    response = _post(client, _bp(), alice)
    assert response.status_code == 201
    data = response.json()
    assert data["values"] == {"systolic": 142, "diastolic": 91, "pulse": 72}
    assert data["units"] == {"systolic": "mm[Hg]", "diastolic": "mm[Hg]", "pulse": "/min"}
    assert (data["category"], data["severity"], data["source"], data["duplicate"]) == (
        "bp_grade_1",
        "attention",
        "device",
        False,
    )
    assert data["measured_at"] == "2026-12-01T07:57:00+08:00"


def test_a_duplicate_is_not_an_error(client: Client, alice: User) -> None:
    _post(client, _bp(), alice)
    again = _post(client, _bp(), alice)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert Reading.objects.count() == 1


def test_a_batch_is_all_or_nothing(client: Client, alice: User) -> None:
    glucose = {
        "kind": "glucose",
        "values": {"glucose": 99},
        "unit": "mg/dL",
        "context": "fasting",
        "measured_at": (NOW - timedelta(hours=2)).isoformat(),
    }
    bad = _post(client, [_bp(), glucose, _bp(values={"systolic": 400, "diastolic": 90})], alice)
    assert bad.status_code == 400
    errors = bad.json()
    assert errors[0] == {} and errors[1] == {}
    assert "systolic" in errors[2]
    assert Reading.objects.count() == 0
    good = _post(client, [_bp(), glucose, _bp()], alice)
    assert good.status_code == 201
    assert [r["duplicate"] for r in good.json()] == [False, False, True]
    assert good.json()[1]["values"] == {"glucose": 5.5}
    assert Reading.objects.count() == 2


def test_field_errors_answer_400(client: Client, alice: User) -> None:
    response = _post(client, {"kind": "cholesterol", "values": {"x": "high"}, "measured_at": "soon"}, alice)
    assert response.status_code == 400
    assert set(response.json()) >= {"kind", "measured_at"}
    future = _post(client, _bp(measured_at=(NOW + timedelta(hours=1)).isoformat()), alice)
    assert future.status_code == 400
    assert future.json()["measured_at"] == ["The time of measurement cannot be in the future."]
    assert _post(client, [], alice).status_code == 400
    assert Reading.objects.count() == 0


def test_without_consent_it_answers_403(client: Client, mallory: User) -> None:
    response = _post(client, _bp(), mallory)
    assert response.status_code == 403
    assert response.json()["code"] == "no_consent"


def test_a_critical_reading_through_the_api_alerts(client: Client, alice: User, appointment: Appointment) -> None:
    _post(client, _bp(values={"systolic": 200, "diastolic": 125}), alice)
    assert Alert.objects.get().severity == "critical"


def test_bob_posts_for_alice_and_mallory_cannot(
    client: Client, alice: User, bob: User, mallory: User, dave: User, appointment: Appointment
) -> None:
    assert _post(client, _bp(patient=alice.pk), bob).status_code == 201
    assert Reading.objects.get().entered_by == bob
    for outsider in (mallory, dave):
        assert (
            _post(client, _bp(patient=alice.pk, values={"systolic": 150, "diastolic": 95}), outsider).status_code == 404
        )
    assert _post(client, _bp(patient=999999), bob).status_code == 404
    assert Reading.objects.count() == 1


def test_get_lists_with_filters(client: Client, alice: User) -> None:
    record(alice, measured_at=NOW - timedelta(days=3))
    record(alice, kind="spo2", values={"spo2": 97}, measured_at=NOW - timedelta(days=1))
    auth = _bearer(alice)
    everything = client.get(URL, **auth).json()
    assert [r["kind"] for r in everything] == ["spo2", "blood_pressure"]
    assert [r["kind"] for r in client.get(URL, {"kind": "spo2"}, **auth).json()] == ["spo2"]
    since = (NOW - timedelta(days=2)).isoformat()
    assert [r["kind"] for r in client.get(URL, {"since": since}, **auth).json()] == ["spo2"]
    assert [r["kind"] for r in client.get(URL, {"until": since}, **auth).json()] == ["blood_pressure"]
    assert client.get(URL, {"kind": "nope"}, **auth).status_code == 400


def test_who_may_list_alices_readings(
    client: Client, alice: User, bob: User, carol: User, dave: User, mallory: User, appointment: Appointment
) -> None:
    record(alice)
    assert len(client.get(URL, {"patient": alice.pk}, **_bearer(bob)).json()) == 1
    for outsider in (carol, dave, mallory):
        assert client.get(URL, {"patient": alice.pk}, **_bearer(outsider)).status_code == 404
    assert client.get(URL).status_code in (401, 403)
    assert client.post(URL, _bp(), content_type="application/json").status_code in (401, 403)
    assert client.get(URL, HTTP_AUTHORIZATION="Bearer tm_not-a-token").status_code in (401, 403)


def test_it_is_in_the_openapi_schema(client: Client, alice: User) -> None:
    schema = client.get("/api/schema/", {"format": "json"}, **_bearer(alice)).json()
    assert "/api/v1/readings/" in schema["paths"]
    assert {"get", "post"} <= set(schema["paths"]["/api/v1/readings/"])


def test_it_answers_a_crisis_with_the_patients_advice(client: Client, alice: User, appointment: Appointment) -> None:
    response = _post(client, _bp(values={"systolic": 200, "diastolic": 125}), alice)
    assert response.status_code == 201
    data = response.json()
    assert (data["category"], data["severity"], data["category_label"]) == (
        "bp_crisis",
        "critical",
        "Hypertensive crisis",
    )
    assert "measure again" in data["advice"] and "call 120" in data["advice"]


def test_it_gives_the_advice_in_the_patients_language_whoever_sends_it(
    client: Client, alice: User, bob: User, appointment: Appointment
) -> None:
    from django.utils import translation

    from apps.vitals.flags import advice_for

    alice.language = "zh-hans"
    alice.save(update_fields=["language"])
    by_bob = _post(client, _bp(patient=alice.pk, values={"systolic": 200, "diastolic": 125}), bob).json()
    assert by_bob["category_label"] == "高血压危象"
    with translation.override("zh-hans"):
        assert by_bob["advice"] == advice_for("bp_crisis", emergency_number="120")
    assert "拨打 120" in by_bob["advice"]
    listed = client.get(URL, **_bearer(alice)).json()
    assert [item["category_label"] for item in listed] == ["高血压危象"]


def test_it_refuses_an_empty_or_oversized_batch_with_a_clear_error(client: Client, alice: User) -> None:
    for batch in ([], [_bp()] * 1001):
        response = _post(client, batch, alice)
        assert response.status_code == 400
        assert response.json()["code"] == "batch_size"
        assert "1000" in response.json()["detail"]
    assert Reading.objects.count() == 0


def test_it_lets_carol_post_for_a_patient_of_her_clinic(
    client: Client, alice: User, carol: User, appointment: Appointment
) -> None:
    """Clinic staff (a village doctor's front desk) enter for the patient, by the API too."""
    response = _post(client, _bp(patient=alice.pk), carol)
    assert response.status_code == 201
    reading = Reading.objects.get()
    assert (reading.patient, reading.entered_by) == (alice, carol)
