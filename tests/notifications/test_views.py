from __future__ import annotations

import json
from collections.abc import Callable
from datetime import time
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.clinics.models import Clinic
from apps.notifications.models import Category, Channel, Notification, NotificationPreference, QuietHours, SmsOptOut
from apps.notifications.services import notification_send
from tests.factories import ClinicFactory, make_clinic_admin

Login = Callable[[User], Client]


def _welcome(user: User, key: str = "w", **kwargs: Any) -> Notification:
    kwargs.setdefault("channels", [Channel.IN_APP])
    [row] = notification_send(
        recipient=user,
        category=Category.ACCOUNT,
        template="account/welcome",
        context={"link": "/me/consent/"},
        idempotency_key=key,
        **kwargs,
    )
    return row


# --- Inbox ---------------------------------------------------------------------


def test_the_inbox_lists_the_users_delivered_notifications(login: Login, alice: User, deliver: Any) -> None:
    with deliver():
        _welcome(alice)
    page = login(alice).get(reverse("notifications:inbox")).content.decode()
    assert "Welcome to Telemed" in page


def test_the_bell_counts_unread_notifications_on_every_page(login: Login, alice: User, deliver: Any) -> None:
    with deliver():
        _welcome(alice, "a")
        _welcome(alice, "b")
    page = login(alice).get("/me/").content.decode()
    assert "data-unread-count >2</span>" in page


def test_opening_a_notification_marks_it_read_and_follows_its_link(login: Login, alice: User, deliver: Any) -> None:
    with deliver():
        row = _welcome(alice)
    response = login(alice).post(reverse("notifications:open", args=[row.pk]))
    assert response["Location"] == "/me/consent/"
    row.refresh_from_db()
    assert row.read_at is not None


def test_mark_all_read(login: Login, alice: User, deliver: Any) -> None:
    with deliver():
        _welcome(alice, "a")
        _welcome(alice, "b")
    login(alice).post(reverse("notifications:mark_all_read"))
    assert not Notification.objects.filter(recipient=alice, read_at__isnull=True).exists()


def test_mallory_cannot_open_alices_notification(login: Login, alice: User, mallory: User, deliver: Any) -> None:
    with deliver():
        row = _welcome(alice)
    assert login(mallory).post(reverse("notifications:open", args=[row.pk])).status_code == 404
    row.refresh_from_db()
    assert row.read_at is None
    assert "Welcome to Telemed" not in login(mallory).get(reverse("notifications:inbox")).content.decode()


@pytest.mark.parametrize("name", ["notifications:inbox", "notifications:preferences"])
def test_visitors_are_sent_to_sign_in(client: Client, db: None, name: str) -> None:
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


# --- Preferences -----------------------------------------------------------------


def test_it_saves_preferences_quiet_hours_and_an_sms_opt_out(login: Login, alice: User) -> None:
    data = {
        "category_appointment": ["sms"],
        "category_consult": ["sms", "in_app"],
        "category_readings_alert": ["sms", "in_app"],
        "category_account": ["email"],
        "quiet_start": "21:30",
        "quiet_end": "06:45",
        "sms_opt_out": "on",
    }
    response = login(alice).post(reverse("notifications:preferences"), data)
    assert response.status_code == 302
    appointment = NotificationPreference.objects.get(user=alice, category="appointment")
    assert (appointment.sms, appointment.email, appointment.in_app) == (True, False, False)
    hours = QuietHours.objects.get(user=alice)
    assert (hours.start, hours.end) == (time(21, 30), time(6, 45))
    opt_out = SmsOptOut.objects.get(phone=alice.phone)
    assert opt_out.source == "user"
    data.pop("sms_opt_out")
    login(alice).post(reverse("notifications:preferences"), data)
    opt_out.refresh_from_db()
    assert opt_out.opted_in_at is not None


def test_it_refuses_a_bad_time_and_changes_nothing(login: Login, alice: User) -> None:
    response = login(alice).post(
        reverse("notifications:preferences"),
        {"quiet_start": "25:99", "quiet_end": "07:00", "category_account": ["sms"]},
    )
    assert response.status_code == 200
    assert "Enter a valid time" in response.content.decode()
    assert not NotificationPreference.objects.filter(user=alice).exists()
    assert not QuietHours.objects.filter(user=alice).exists()


def test_it_refuses_an_unknown_channel(login: Login, alice: User) -> None:
    response = login(alice).post(
        reverse("notifications:preferences"),
        {"quiet_start": "22:00", "quiet_end": "07:00", "category_account": ["pigeon"]},
    )
    assert response.status_code == 200
    assert not NotificationPreference.objects.filter(user=alice).exists()


# --- Inbound SMS (STOP) ------------------------------------------------------------

GATEWAY_KEY = "gateway-key-for-tests"


@pytest.fixture
def gateway_settings(settings: Any) -> None:
    settings.SMS_HTTP_API_KEY = GATEWAY_KEY


def _inbound(client: Client, payload: object, key: str = GATEWAY_KEY) -> Any:
    return client.post(
        reverse("notifications:sms_inbound"),
        json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )


def test_a_stop_reply_opts_the_number_out(client: Client, alice: User, gateway_settings: None) -> None:
    _welcome(alice, channels=[Channel.SMS])  # waiting in the outbox (not delivered: no commit in this test)
    response = _inbound(client, {"from": "+8613800138000", "text": " stop "})
    assert response.json() == {"result": "opted_out"}
    assert SmsOptOut.objects.get(phone=alice.phone).keyword == "STOP"
    assert Notification.objects.get(recipient=alice, channel="sms").status == "dead"


@pytest.mark.parametrize("word", ["退订", "TD"])
def test_chinese_unsubscribe_words_count(client: Client, alice: User, gateway_settings: None, word: str) -> None:
    assert _inbound(client, {"from": "13800138000", "text": word}).json() == {"result": "opted_out"}


def test_start_opts_back_in(client: Client, alice: User, gateway_settings: None) -> None:
    _inbound(client, {"from": alice.phone, "text": "STOP"})
    assert _inbound(client, {"from": alice.phone, "text": "START"}).json() == {"result": "opted_in"}
    assert not SmsOptOut.objects.filter(phone=alice.phone, opted_in_at__isnull=True).exists()


def test_the_inbound_hook_refuses_a_wrong_key(client: Client, alice: User, gateway_settings: None) -> None:
    assert _inbound(client, {"from": alice.phone, "text": "STOP"}, key="guess").status_code == 404
    assert not SmsOptOut.objects.exists()


def test_the_inbound_hook_refuses_bad_input_and_changes_nothing(
    client: Client, db: None, gateway_settings: None
) -> None:
    for payload in ({"text": "STOP"}, {"from": "12", "text": "STOP"}, ["STOP"]):
        response = _inbound(client, payload)
        assert response.status_code == 400
        assert "expected JSON" in response.json()["error"]
    bad_json = client.post(
        reverse("notifications:sms_inbound"),
        "{",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {GATEWAY_KEY}",
    )
    assert bad_json.status_code == 400
    assert not SmsOptOut.objects.exists()


def test_the_inbound_hook_is_closed_without_a_gateway(client: Client, db: None) -> None:
    assert _inbound(client, {"from": "+8613800138000", "text": "STOP"}).status_code == 404


# --- Embedded outbox page ------------------------------------------------------------


def test_the_outbox_page_shows_what_the_console_backends_sent(client: Client, alice: User, deliver: Any) -> None:
    with deliver():
        client.post(reverse("account_request_login_code"), {"phone": alice.phone})
    page = client.get(reverse("notifications:outbox")).content.decode()
    assert "Telemed code:" in page
    assert alice.phone in page


def test_the_outbox_page_does_not_exist_with_real_gateways(client: Client, db: None, settings: Any) -> None:
    settings.SMS_BACKEND = "apps.notifications.sms.HttpSmsBackend"
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    assert client.get(reverse("notifications:outbox")).status_code == 404


# --- Clinic admins' delivery view -----------------------------------------------------


def test_the_clinic_admin_sees_and_retries_dead_notifications(
    login: Login, carol: User, alice: User, clinic: Clinic, deliver: Any
) -> None:
    [row] = notification_send(
        recipient=alice,
        category=Category.APPOINTMENT,
        template="account/welcome",
        context={},
        idempotency_key="r",
        channels=[Channel.SMS],
        clinic_id=clinic.pk,
    )
    Notification.objects.filter(pk=row.pk).update(status="dead", last_error="gateway refused", attempts=8)
    client = login(carol)
    page = client.get(reverse("notifications:clinic_delivery", args=[clinic.pk]) + "?status=dead").content.decode()
    assert "gateway refused" in page
    with deliver():
        response = client.post(reverse("notifications:clinic_retry", args=[clinic.pk, row.pk]))
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.status == "sent"


def test_the_delivery_view_hides_other_clinics(login: Login, carol: User, alice: User) -> None:
    other = ClinicFactory()
    make_clinic_admin(clinic=other)
    [row] = notification_send(
        recipient=alice,
        category=Category.APPOINTMENT,
        template="account/welcome",
        context={},
        idempotency_key="o",
        channels=[Channel.SMS],
        clinic_id=other.pk,
    )
    client = login(carol)
    assert client.get(reverse("notifications:clinic_delivery", args=[other.pk])).status_code == 404
    assert client.post(reverse("notifications:clinic_retry", args=[other.pk, row.pk])).status_code == 404


@pytest.mark.parametrize("who", ["mallory", "bob"])
def test_the_delivery_view_refuses_non_admins(login: Login, clinic: Clinic, who: str, request: Any) -> None:
    user = request.getfixturevalue(who)
    assert login(user).get(reverse("notifications:clinic_delivery", args=[clinic.pk])).status_code == 404


def test_the_delivery_view_refuses_a_bad_filter_quietly(login: Login, carol: User, clinic: Clinic) -> None:
    response = login(carol).get(reverse("notifications:clinic_delivery", args=[clinic.pk]) + "?status=bogus")
    assert response.status_code == 200
