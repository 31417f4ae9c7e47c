"""Acting on the triage queue: acknowledging an alert with a short note
(leaves the queue, stays in the chart, audited) and messaging the patient."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.clinics.models import Clinic
from apps.notifications.models import Notification
from apps.vitals.models import Alert
from apps.vitals.services import AlertRefused, alert_acknowledge
from tests.care.dashboard_data import NOW, alert, appointment

Login = Callable[[User], Client]
pytestmark = pytest.mark.time_machine(NOW, tick=False)  # dashboard_data's "now"


@pytest.fixture
def booked(alice: User, bob: User, clinic: Clinic) -> None:
    appointment(patient=alice, doctor=bob, clinic=clinic, starts_at=NOW - timedelta(days=30))


@pytest.fixture
def open_alert(alice: User, booked: None) -> Alert:
    return alert(alice, severity="critical", minutes_ago=5)


def _acknowledge(client: Client, raised: Alert, note: str, **headers: str) -> object:
    return client.post(reverse("care:alert_acknowledge", args=[raised.pk]), {"note": note}, **headers)


# --- Acknowledge -----------------------------------------------------------------------


def test_it_acknowledges_with_a_note_and_the_alert_leaves_the_queue(
    login: Login, alice: User, bob: User, open_alert: Alert
) -> None:
    client = login(bob)
    response = _acknowledge(client, open_alert, "  Called her;   she is resting, recheck in 1 h ")
    assert response.status_code == 302  # type: ignore[attr-defined]
    open_alert.refresh_from_db()
    assert open_alert.status == "acknowledged"
    assert open_alert.acknowledged_by == bob
    assert open_alert.acknowledged_at == NOW
    assert open_alert.acknowledge_note == "Called her; she is resting, recheck in 1 h"
    event = AuditEvent.objects.filter(object_type="alert", object_id=str(open_alert.pk), action="update").get()
    assert event.actor == bob
    assert event.patient == alice
    page = client.get(reverse("care:dashboard")).content.decode()
    assert f'data-alert-id="{open_alert.pk}"' not in page
    assert "Alert acknowledged." in page
    # It stays in the patient's chart.
    assert Alert.objects.filter(pk=open_alert.pk).exists()


def test_from_htmx_it_answers_the_new_queue(login: Login, bob: User, open_alert: Alert, alice: User) -> None:
    other = alert(alice, severity="urgent", minutes_ago=1)
    response = _acknowledge(login(bob), open_alert, "Seen", HTTP_HX_REQUEST="true")
    page = response.content.decode()  # type: ignore[attr-defined]
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert "data-triage" in page
    assert f'data-alert-id="{other.pk}"' in page
    assert f'data-alert-id="{open_alert.pk}"' not in page


@pytest.mark.parametrize(
    ("note", "error"),
    [("", "Say in a few words"), ("   ", "Say in a few words"), ("x" * 201, "under 200 characters")],
)
def test_it_requires_a_short_note(login: Login, bob: User, open_alert: Alert, note: str, error: str) -> None:
    client = login(bob)
    page = client.post(
        reverse("care:alert_acknowledge", args=[open_alert.pk]), {"note": note}, follow=True
    ).content.decode()
    assert error in page
    open_alert.refresh_from_db()
    assert open_alert.status == "open"
    assert not AuditEvent.objects.filter(object_type="alert", action="update").exists()
    htmx = _acknowledge(client, open_alert, note, HTTP_HX_REQUEST="true").content.decode()  # type: ignore[attr-defined]
    assert error in htmx
    assert f'data-alert-id="{open_alert.pk}"' in htmx


def test_it_refuses_an_alert_acknowledged_already(bob: User, dave: User, open_alert: Alert, alice: User) -> None:
    alert_acknowledge(alert=open_alert, by=bob, note="Called")
    with pytest.raises(AlertRefused) as refused:
        alert_acknowledge(alert=open_alert, by=bob, note="Again")
    assert refused.value.code == "already"
    open_alert.refresh_from_db()
    assert open_alert.acknowledge_note == "Called"


@pytest.mark.parametrize("who", ["dave", "erin", "mallory", "alice", "carol"])
def test_nobody_else_may_acknowledge(login: Login, request: pytest.FixtureRequest, open_alert: Alert, who: str) -> None:
    response = _acknowledge(login(request.getfixturevalue(who)), open_alert, "Seen")
    assert response.status_code == 404  # type: ignore[attr-defined]
    open_alert.refresh_from_db()
    assert open_alert.status == "open"


def test_a_visitor_is_sent_to_sign_in(client: Client, open_alert: Alert) -> None:
    response = _acknowledge(client, open_alert, "Seen")
    assert response.status_code == 302  # type: ignore[attr-defined]
    open_alert.refresh_from_db()
    assert open_alert.status == "open"


def test_an_unknown_alert_is_not_found(login: Login, bob: User, db: None) -> None:
    response = login(bob).post(reverse("care:alert_acknowledge", args=[999999]), {"note": "x"})
    assert response.status_code == 404


def test_acknowledging_needs_a_post(login: Login, bob: User, open_alert: Alert) -> None:
    assert login(bob).get(reverse("care:alert_acknowledge", args=[open_alert.pk])).status_code == 405


# --- Message the patient ----------------------------------------------------------------


def _message(client: Client, patient: User, text: str, form_id: str = "abc123") -> object:
    return client.post(reverse("care:patient_message", args=[patient.pk]), {"text": text, "token": form_id})


def test_the_doctor_messages_the_patient_in_the_app_and_by_sms(
    login: Login, alice: User, bob: User, booked: None, deliver: Callable[[], object]
) -> None:
    client = login(bob)
    form = client.get(reverse("care:patient_message", args=[alice.pk])).content.decode()
    assert 'name="token"' in form
    with deliver():  # type: ignore[attr-defined]
        response = _message(client, alice, "Please measure your blood pressure again tonight.")
    assert response.status_code == 302  # type: ignore[attr-defined]
    sent = Notification.objects.filter(recipient=alice, template="care/doctor_message")
    assert sorted(sent.values_list("channel", flat=True)) == ["in_app", "sms"]
    event = AuditEvent.objects.filter(object_type="patient_message").get()
    assert event.actor == bob
    assert event.patient == alice
    assert "blood pressure" not in event.reason
    # The same form sent twice sends nothing new.
    _message(client, alice, "Please measure your blood pressure again tonight.")
    assert sent.count() == 2


@pytest.mark.parametrize(("text", "error"), [("", "This field is required"), ("x" * 101, "at most 100")])
def test_a_message_must_be_short(login: Login, alice: User, bob: User, booked: None, text: str, error: str) -> None:
    page = _message(login(bob), alice, text).content.decode()  # type: ignore[attr-defined]
    assert error in page
    assert not Notification.objects.filter(template="care/doctor_message").exists()


@pytest.mark.parametrize("who", ["dave", "erin", "mallory", "carol", "alice"])
def test_nobody_else_may_message_bobs_patient(
    login: Login, request: pytest.FixtureRequest, alice: User, booked: None, who: str
) -> None:
    client = login(request.getfixturevalue(who))
    assert client.get(reverse("care:patient_message", args=[alice.pk])).status_code == 404
    assert _message(client, alice, "Hello").status_code == 404  # type: ignore[attr-defined]
    assert not Notification.objects.filter(template="care/doctor_message").exists()


def test_a_visitor_cannot_message(client: Client, alice: User, booked: None) -> None:
    assert _message(client, alice, "Hello").status_code == 302  # type: ignore[attr-defined]
    assert not Notification.objects.filter(template="care/doctor_message").exists()


def test_break_glass_lets_a_doctor_act_on_the_alert_but_not_list_the_patient(
    login: Login, alice: User, clinic: Clinic, dave: User, open_alert: Alert
) -> None:
    from apps.care.models import BreakGlassAccess

    BreakGlassAccess.objects.create(
        doctor=dave,
        patient=alice,
        clinic=clinic,
        reason="Unconscious at the clinic door",
        expires_at=NOW + timedelta(hours=12),
    )
    client = login(dave)
    assert f'data-alert-id="{open_alert.pk}"' not in client.get(reverse("care:dashboard")).content.decode()
    assert "Alice" not in client.get(reverse("care:patients")).content.decode()
    assert client.get(reverse("care:patient_message", args=[alice.pk])).status_code == 200
    assert _acknowledge(client, open_alert, "Seen in the emergency").status_code == 302  # type: ignore[attr-defined]
    open_alert.refresh_from_db()
    assert open_alert.acknowledged_by == dave
