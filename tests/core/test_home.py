from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.accounts.services import consent_withdraw


def test_it_sends_visitors_to_the_sign_in_page(client: Client, db: None) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == reverse("account_login")


def test_the_sign_in_page_offers_an_sms_code(client: Client, db: None) -> None:
    page = client.get(reverse("account_login")).content.decode()
    assert reverse("account_request_login_code") in page
    assert reverse("account_signup") in page


def test_it_greets_the_patient_and_asks_for_missing_consent(login: Callable[[User], Client], alice: User) -> None:
    client = login(alice)
    page = client.get("/").content.decode()
    assert "Hello, Alice" in page
    assert "Read and give consent" not in page
    consent_withdraw(patient=alice, withdrawn_by=alice)
    assert "Read and give consent" in client.get("/").content.decode()


def test_it_shows_the_clinic_admin_their_clinics(login: Callable[[User], Client], carol: User) -> None:
    page = login(carol).get("/").content.decode()
    assert "Hillside Clinic" in page
    assert "Staff and invitations" in page


def test_it_shows_the_doctor_their_dashboard(login: Callable[[User], Client], bob: User) -> None:
    page = login(bob).get("/").content.decode()
    assert "Triage" in page  # apps/care's dashboard (tests/care/test_dashboard.py)
    assert reverse("care:patients") in page
    assert "Staff and invitations" not in page


def test_it_switches_language_for_visitors(client: Client, db: None) -> None:
    response = client.post(reverse("core:set_language"), {"language": "zh-hans", "next": "/accounts/login/"})
    assert response.status_code == 302
    page = client.get("/accounts/login/").content.decode()
    assert '<html lang="zh-hans">' in page
    assert "登录" in page


def test_it_remembers_the_language_on_the_account(login: Callable[[User], Client], alice: User) -> None:
    login(alice).post(reverse("core:set_language"), {"language": "zh-hans", "next": "/"})
    alice.refresh_from_db()
    assert alice.language == "zh-hans"


def test_it_ignores_an_offsite_next(client: Client, db: None) -> None:
    response = client.post(reverse("core:set_language"), {"language": "en", "next": "https://evil.example/"})
    assert "evil.example" not in response["Location"]


@pytest.mark.parametrize(("language", "text"), [("en", "Page not found"), ("zh-hans", "页面不存在")])
def test_the_404_page_speaks_both_languages(client: Client, db: None, language: str, text: str) -> None:
    response = client.get("/no-such-page/", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 404
    assert text in response.content.decode()


def test_the_500_page_renders_without_a_database(db: None) -> None:
    from apps.core.views import error_500

    response = error_500(None)  # type: ignore[arg-type]
    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()


def test_the_403_page_is_friendly(rf: object, db: None) -> None:
    from django.contrib.auth.models import AnonymousUser
    from django.test import RequestFactory

    from apps.core.views import error_403

    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    response = error_403(request)
    assert response.status_code == 403
    assert "Not allowed" in response.content.decode()


def test_healthz_answers_without_data(client: Client, db: None) -> None:
    response = client.get("/healthz")
    assert response.json() == {"status": "ok"}


def test_every_response_carries_a_request_id(client: Client, db: None) -> None:
    response = client.get("/accounts/login/", HTTP_X_REQUEST_ID="abcdef0123456789")
    assert response["X-Request-ID"] == "abcdef0123456789"
    assert len(client.get("/accounts/login/", HTTP_X_REQUEST_ID="bad id!")["X-Request-ID"]) == 32


@pytest.mark.parametrize(
    ("remote", "expected"),
    [("192.0.2.1", "192.0.2.1"), ("::ffff:192.0.2.1", "192.0.2.1"), ("2001:db8::1", "2001:db8::1"), ("junk", None)],
)
def test_it_records_one_spelling_of_the_client_address(remote: str, expected: str | None, alice: User) -> None:
    from django.core.management import call_command
    from django.test import RequestFactory

    from apps.audit.models import AuditEvent
    from apps.audit.services import audit_record
    from apps.core.middleware import RequestIdMiddleware, client_ip

    request = RequestFactory().get("/", REMOTE_ADDR=remote)
    assert client_ip(request) == expected

    def view(request: object) -> object:
        from django.http import HttpResponse

        audit_record(action="view", actor=alice, object_type="user", object_id=alice.pk)
        return HttpResponse()

    RequestIdMiddleware(view)(request)  # type: ignore[arg-type]
    assert AuditEvent.objects.order_by("-id").first().ip == expected  # type: ignore[union-attr]
    call_command("audit_verify")


def test_the_clinic_admin_finds_the_delivery_view(login: Callable[[User], Client], carol: User) -> None:
    page = login(carol).get("/").content.decode()
    clinic_id = carol.memberships.get().clinic_id
    assert reverse("notifications:clinic_delivery", args=[clinic_id]) in page
