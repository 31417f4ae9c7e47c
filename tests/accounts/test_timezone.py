from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from django.test import Client
from django.urls import reverse

from apps.accounts.models import Consent, User


def test_times_are_shown_in_the_users_time_zone(login: Callable[[User], Client], alice: User) -> None:
    Consent.objects.filter(patient=alice).update(given_at=datetime(2026, 3, 1, 23, 30, tzinfo=UTC))
    client = login(alice)
    assert "2026-03-02 07:30" in client.get(reverse("accounts:consent")).content.decode()  # Asia/Shanghai
    User.objects.filter(pk=alice.pk).update(timezone="Europe/London")
    assert "2026-03-01 23:30" in client.get(reverse("accounts:consent")).content.decode()
