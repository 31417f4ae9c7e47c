from __future__ import annotations

from collections.abc import Callable

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.urls import reverse

from apps.accounts.decorators import consent_required
from apps.accounts.models import Consent, User
from apps.accounts.selectors import consent_is_current
from apps.accounts.services import ConsentError, consent_give, consent_withdraw
from apps.audit.models import AuditEvent


def test_it_records_who_when_and_which_version(login: Callable[[User], Client], mallory: User) -> None:
    client = login(mallory)
    response = client.post(reverse("accounts:consent"), {"agree": "on"})
    assert response.status_code == 302
    consent = Consent.objects.get(patient=mallory)
    assert consent.given_by == mallory
    assert consent.version == "2026-11"
    assert consent.given_at is not None
    assert AuditEvent.objects.filter(object_type="consent", action="create", patient=mallory).exists()


def test_it_needs_the_box_ticked(login: Callable[[User], Client], mallory: User) -> None:
    response = login(mallory).post(reverse("accounts:consent"), {})
    assert response.status_code == 200
    assert "Tick the box" in response.content.decode()
    assert not Consent.objects.filter(patient=mallory).exists()


def test_it_withdraws_consent_and_stops_new_processing(login: Callable[[User], Client], alice: User) -> None:
    client = login(alice)
    assert consent_is_current(patient=alice)
    response = client.post(reverse("accounts:consent_withdraw"))
    assert response.status_code == 302
    assert not consent_is_current(patient=alice)
    assert Consent.objects.get(patient=alice).withdrawn_by == alice


def test_it_keeps_the_history_when_consent_is_given_again(alice: User) -> None:
    consent_withdraw(patient=alice, withdrawn_by=alice)
    consent_give(patient=alice, given_by=alice)
    assert Consent.objects.filter(patient=alice).count() == 2
    assert consent_is_current(patient=alice)


def test_it_refuses_to_withdraw_what_was_never_given(mallory: User) -> None:
    with pytest.raises(ConsentError):
        consent_withdraw(patient=mallory, withdrawn_by=mallory)


def test_it_asks_for_consent_again_when_the_text_changes(alice: User, settings: object) -> None:
    settings.HEALTH_DATA_CONSENT_VERSION = "2027-01"  # type: ignore[attr-defined]
    assert not consent_is_current(patient=alice)
    consent_give(patient=alice, given_by=alice)
    assert consent_is_current(patient=alice)
    assert Consent.objects.filter(patient=alice, withdrawn_at__isnull=True).count() == 1


def test_it_guards_health_data_views_behind_consent(alice: User, mallory: User, rf: RequestFactory) -> None:
    @consent_required
    def readings(request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")

    def call(user: User) -> HttpResponse:
        from django.contrib.messages.storage.fallback import FallbackStorage

        request = rf.get("/readings/")
        request.user = user
        request.session = {}  # type: ignore[assignment]
        request._messages = FallbackStorage(request)  # type: ignore[attr-defined]
        return readings(request)

    assert call(alice).status_code == 200
    refused = call(mallory)
    assert refused.status_code == 302
    assert refused["Location"] == reverse("accounts:consent")


def test_it_refuses_the_consent_page_to_staff(login: Callable[[User], Client], bob: User) -> None:
    assert login(bob).get(reverse("accounts:consent")).status_code == 404
