from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from tests.conftest import sms_code, sms_sent
from tests.factories import PASSWORD

Deliver = Callable[[], Any]


@pytest.mark.sqlite
def test_it_signs_in_by_email_and_password_and_audits_it(client: Client, alice: User) -> None:
    response = client.post(reverse("account_login"), {"login": "alice@example.org", "password": PASSWORD})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(alice.pk)
    assert AuditEvent.objects.filter(actor=alice, action="login").exists()


def test_it_signs_in_by_phone_number_and_password(client: Client, alice: User) -> None:
    response = client.post(reverse("account_login"), {"login": "+8613800138000", "password": PASSWORD})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_it_signs_in_by_sms_code(client: Client, alice: User, deliver: Deliver) -> None:
    with deliver():
        response = client.post(reverse("account_request_login_code"), {"phone": "138 0013 8000"})
    assert response.status_code == 302
    response = client.post(reverse("account_confirm_login_code"), {"code": sms_code(str(alice.phone))})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_it_writes_the_code_sms_in_the_users_language(client: Client, alice: User, deliver: Deliver) -> None:
    User.objects.filter(pk=alice.pk).update(language="zh-hans")
    with deliver():
        client.post(reverse("account_request_login_code"), {"phone": alice.phone})
    assert "验证码" in sms_sent(alice.phone)[-1].body


def test_it_audits_a_failed_login_without_the_password(client: Client, alice: User) -> None:
    client.post(reverse("account_login"), {"login": "alice@example.org", "password": "wrong-password"})
    event = AuditEvent.objects.get(action="login_failed")
    assert event.object_id == str(alice.pk)
    assert event.outcome == "failure"
    assert "wrong-password" not in event.canonical_content().decode()


def test_it_rate_limits_failed_logins(client: Client, alice: User) -> None:
    for attempt in range(6):
        client.post(reverse("account_login"), {"login": "alice@example.org", "password": f"nope-{attempt}"})
    # Even the right password is refused while the limit holds.
    response = client.post(reverse("account_login"), {"login": "alice@example.org", "password": PASSWORD})
    assert "_auth_user_id" not in client.session
    assert "Too many failed login attempts" in response.content.decode()
