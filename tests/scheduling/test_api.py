from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import User
from apps.accounts.tokens import token_create, token_revoke
from apps.clinics.models import Clinic
from apps.scheduling.models import Appointment
from tests.scheduling.conftest import NOW, TOMORROW_9, book

Login = Callable[[User], Client]
pytestmark = pytest.mark.usefixtures("hours")


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def _bearer(user: User) -> dict[str, str]:
    _, raw = token_create(user=user, name="gateway", expires_in_days=30)
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def _post(client: Client, url: str, body: dict[str, Any], **headers: str) -> Any:
    return client.post(url, body, content_type="application/json", **headers)


def test_doctors_and_their_slots(client: Client, alice: User, bob: User, clinic: Clinic) -> None:
    auth = _bearer(alice)
    doctors = client.get("/api/v1/doctors/", **auth).json()
    assert [d["full_name"] for d in doctors] == ["Bob"]
    assert doctors[0]["clinics"] == [{"id": clinic.pk, "name": clinic.name, "timezone": "Asia/Shanghai"}]
    assert client.get("/api/v1/doctors/", {"specialty": "cardiology"}, **auth).json() == []
    slots = client.get(
        f"/api/v1/doctors/{bob.pk}/slots/", {"clinic": clinic.pk, "start": "2026-12-02", "days": 1}, **auth
    )
    assert slots.status_code == 200
    first = slots.json()[0]
    assert first["start"] == "2026-12-02T09:00:00+08:00"
    assert first["modes"] == ["phone", "video"]


def test_it_books_through_the_api_and_answers_409_when_taken(
    client: Client, alice: User, bob: User, clinic: Clinic, mallory: User
) -> None:
    body = {"doctor": bob.pk, "clinic": clinic.pk, "starts_at": TOMORROW_9.isoformat(), "mode": "video"}
    created = _post(client, "/api/v1/appointments/", body, **_bearer(alice))
    assert created.status_code == 201
    assert created.json()["starts_at"] == "2026-12-02T09:00:00+08:00"
    from apps.accounts.services import consent_give

    consent_give(patient=mallory, given_by=mallory)
    taken = _post(client, "/api/v1/appointments/", body, **_bearer(mallory))
    assert taken.status_code == 409
    assert taken.json()["code"] == "slot_taken"
    assert Appointment.objects.count() == 1


@pytest.mark.sqlite
def test_a_booking_reads_what_it_checks_in_one_statement(
    client: Client, alice: User, bob: User, clinic: Clinic
) -> None:
    """The doctor, the clinic, its policy, the hours, the consent, time off
    and the booker's roles: one statement after the token's own, then the
    insert (on SQLite the overlap check comes first: PostgreSQL's
    constraints need none)."""
    auth = _bearer(alice)
    body = {"doctor": bob.pk, "clinic": clinic.pk, "starts_at": TOMORROW_9.isoformat(), "mode": "video"}
    with CaptureQueriesContext(connection) as captured:
        response = _post(client, "/api/v1/appointments/", body, **auth)
    assert response.status_code == 201
    statements = [
        query["sql"]
        for query in captured.captured_queries
        if not query["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "BEGIN"))
        and "accounts_personalaccesstoken" not in query["sql"]
    ]
    insert = next(i for i, sql in enumerate(statements) if sql.startswith('INSERT INTO "scheduling_appointment"'))
    assert len(statements[:insert]) == (1 if connection.vendor == "postgresql" else 2), statements[:insert]


@pytest.mark.parametrize("closed", ["clinic", "doctor"])
def test_an_unknown_doctor_or_closed_clinic_answers_400(
    client: Client, alice: User, bob: User, clinic: Clinic, closed: str
) -> None:
    body = {"doctor": bob.pk, "clinic": clinic.pk, "starts_at": TOMORROW_9.isoformat(), "mode": "video"}
    if closed == "clinic":
        Clinic.objects.filter(pk=clinic.pk).update(is_active=False)
    else:
        body["doctor"] = alice.pk
    response = _post(client, "/api/v1/appointments/", body, **_bearer(alice))
    assert response.status_code == 400
    assert set(response.json()) == {"doctor"}
    assert not Appointment.objects.exists()


def test_invalid_input_answers_400_with_field_errors(client: Client, alice: User, bob: User, clinic: Clinic) -> None:
    response = _post(
        client, "/api/v1/appointments/", {"doctor": bob.pk, "starts_at": "soon", "mode": "fax"}, **_bearer(alice)
    )
    assert response.status_code == 400
    assert set(response.json()) == {"clinic", "starts_at", "mode"}
    off_grid = _post(
        client,
        "/api/v1/appointments/",
        {
            "doctor": bob.pk,
            "clinic": clinic.pk,
            "starts_at": (TOMORROW_9 + timedelta(minutes=7)).isoformat(),
            "mode": "video",
        },
        **_bearer(alice),
    )
    assert off_grid.status_code == 400
    assert off_grid.json()["code"] == "not_offered"
    assert not Appointment.objects.exists()


def test_cancel_and_reschedule(client: Client, alice: User, bob: User, clinic: Clinic) -> None:
    appointment = book(alice, bob, clinic)
    auth = _bearer(alice)
    moved = _post(
        client,
        f"/api/v1/appointments/{appointment.pk}/reschedule/",
        {"starts_at": (TOMORROW_9 + timedelta(hours=1)).isoformat()},
        **auth,
    )
    assert moved.status_code == 200
    new_id = moved.json()["id"]
    cancelled = _post(client, f"/api/v1/appointments/{new_id}/cancel/", {"reason": "better"}, **auth)
    assert cancelled.json()["status"] == "cancelled"
    again = _post(client, f"/api/v1/appointments/{new_id}/cancel/", {}, **auth)
    assert again.status_code == 409
    assert again.json()["code"] == "not_active"


def test_mallory_cannot_see_or_change_alices_appointments(
    client: Client, alice: User, bob: User, clinic: Clinic, mallory: User
) -> None:
    appointment = book(alice, bob, clinic)
    auth = _bearer(mallory)
    assert client.get("/api/v1/appointments/", **auth).json() == []
    assert _post(client, f"/api/v1/appointments/{appointment.pk}/cancel/", {}, **auth).status_code == 404
    assert (
        _post(
            client,
            f"/api/v1/appointments/{appointment.pk}/reschedule/",
            {"starts_at": (TOMORROW_9 + timedelta(hours=1)).isoformat()},
            **auth,
        ).status_code
        == 404
    )
    appointment.refresh_from_db()
    assert appointment.status == "booked"


def test_a_doctor_cannot_book_as_a_patient(client: Client, bob: User, clinic: Clinic) -> None:
    body = {"doctor": bob.pk, "clinic": clinic.pk, "starts_at": TOMORROW_9.isoformat(), "mode": "video"}
    response = _post(client, "/api/v1/appointments/", body, **_bearer(bob))
    assert response.status_code == 403
    assert response.json()["code"] == "not_a_patient"


@pytest.mark.parametrize("url", ["/api/v1/doctors/", "/api/v1/appointments/"])
def test_the_api_refuses_anonymous_and_revoked_tokens(client: Client, alice: User, url: str) -> None:
    assert client.get(url).status_code in (401, 403)
    assert client.get(url, HTTP_AUTHORIZATION="Bearer tm_not-a-token").status_code == 401
    token, raw = token_create(user=alice, name="old", expires_in_days=1)
    token_revoke(token=token, by=alice)
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401


def test_an_expired_token_is_refused(client: Client, alice: User) -> None:
    _, raw = token_create(user=alice, name="short", expires_in_days=1)
    with time_machine.travel(NOW + timedelta(days=2), tick=False):
        assert client.get("/api/v1/doctors/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401


def test_session_auth_needs_csrf(alice: User, bob: User, clinic: Clinic) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.get("/api/v1/doctors/").status_code == 200
    body = {"doctor": bob.pk, "clinic": clinic.pk, "starts_at": TOMORROW_9.isoformat(), "mode": "video"}
    assert _post(client, "/api/v1/appointments/", body).status_code == 403
    assert not Appointment.objects.exists()


def test_the_schema_and_docs_are_served(client: Client, alice: User) -> None:
    client.force_login(alice)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/v1/appointments/" in schema.content.decode()
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert "cdn" not in docs.content.decode().lower()


def test_the_tokens_page_shows_a_new_token_once(login: Login, alice: User, mallory: User) -> None:
    from django.urls import reverse

    client = login(alice)
    created = client.post(
        reverse("accounts:tokens"), {"name": "Glucose meter", "expires_in_days": "90"}
    ).content.decode()
    assert "tm_" in created
    assert "tm_" not in client.get(reverse("accounts:tokens")).content.decode().replace(
        alice.access_tokens.get().prefix, ""
    )
    token = alice.access_tokens.get()
    assert login(mallory).post(reverse("accounts:token_revoke", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
