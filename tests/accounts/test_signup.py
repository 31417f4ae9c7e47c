from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from apps.accounts.models import PatientProfile, User
from apps.audit.models import AuditEvent
from apps.notifications.models import Notification
from tests.conftest import sms_code, sms_sent

Deliver = Callable[[], Any]


@pytest.mark.sqlite
def test_it_signs_up_a_patient_by_phone_and_sms_code(client: Client, db: None, deliver: Deliver) -> None:
    with deliver():
        response = client.post(
            reverse("account_signup"), {"method": "phone", "full_name": "Wang Fang", "phone": "138 0013 8999"}
        )
    assert response.status_code == 302
    assert response["Location"] == reverse("account_verify_phone")
    code = sms_code("+8613800138999")
    # The code went through the outbox, and is erased from it once sent.
    sent = Notification.objects.get(template="account/sign_in_code")
    assert sent.status == "sent"
    assert sent.context == {}

    response = client.post(reverse("account_verify_phone"), {"code": code})
    assert response.status_code == 302

    user = User.objects.get(phone="+8613800138999")
    assert user.phone_verified
    assert user.email is None
    assert not user.has_usable_password()
    assert PatientProfile.objects.filter(user=user).exists()
    assert AuditEvent.objects.filter(actor=user, action="create", object_type="patient_profile").exists()
    home = client.get(reverse("core:home"))
    assert home.status_code == 200
    assert home.context["user"] == user


def test_it_refuses_an_invalid_phone_number_and_creates_nothing(client: Client, db: None) -> None:
    response = client.post(reverse("account_signup"), {"method": "phone", "full_name": "X", "phone": "12345"})
    assert response.status_code == 200
    assert "Enter a valid phone number" in response.content.decode()
    assert not User.objects.exists()


def test_it_shows_the_phone_error_in_chinese(client: Client, db: None) -> None:
    response = client.post(
        reverse("account_signup"),
        {"method": "phone", "full_name": "X", "phone": "12345"},
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert "请输入有效的手机号码" in response.content.decode()


def test_it_refuses_a_wrong_sms_code(client: Client, db: None, deliver: Deliver) -> None:
    with deliver():
        client.post(reverse("account_signup"), {"method": "phone", "full_name": "Li", "phone": "13800138998"})
    wrong = "000000" if sms_code("+8613800138998") != "000000" else "111111"
    response = client.post(reverse("account_verify_phone"), {"code": wrong})
    assert response.status_code == 200
    assert not User.objects.get(phone="+8613800138998").phone_verified
    assert "_auth_user_id" not in client.session


def test_it_signs_up_by_email_and_requires_verification(client: Client, db: None) -> None:
    response = client.post(
        reverse("account_signup") + "?method=email",
        {
            "method": "email",
            "full_name": "Mary Brown",
            "email": "mary@example.org",
            "password1": "a-long-pass-phrase-7",
            "password2": "a-long-pass-phrase-7",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert "_auth_user_id" not in client.session  # not signed in before the address is verified
    assert len(mail.outbox) == 1
    assert "mary@example.org" in mail.outbox[0].to
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+", mail.outbox[0].body)
    assert link
    path = link.group(0).split("testserver", 1)[-1]
    client.post(path)
    user = User.objects.get(email="mary@example.org")
    assert client.session["_auth_user_id"] == str(user.pk)


def test_it_needs_a_password_on_the_email_path(client: Client, db: None) -> None:
    response = client.post(
        reverse("account_signup"), {"method": "email", "full_name": "Mary", "email": "mary@example.org"}
    )
    assert response.status_code == 200
    assert not User.objects.exists()


def test_it_does_not_reveal_that_a_phone_is_taken(client: Client, alice: User, deliver: Deliver) -> None:
    with deliver():
        response = client.post(reverse("account_signup"), {"method": "phone", "full_name": "Eve", "phone": alice.phone})
    assert response.status_code == 302
    assert User.objects.filter(phone=alice.phone).count() == 1
    assert "already has an account" in sms_sent(alice.phone)[-1].body
