from __future__ import annotations

import time
from collections.abc import Callable

from django.test import Client, override_settings

from apps.accounts.middleware import SESSION_LOGIN_AT, SESSION_SEEN_AT
from apps.accounts.models import User


def _age_session(client: Client, *, seen_ago_s: float, login_ago_s: float) -> None:
    session = client.session
    now = time.time()
    session[SESSION_SEEN_AT] = now - seen_ago_s
    session[SESSION_LOGIN_AT] = now - login_ago_s
    session.save()


def test_it_ends_a_staff_session_after_30_idle_minutes(login: Callable[[User], Client], bob: User) -> None:
    client = login(bob)
    _age_session(client, seen_ago_s=31 * 60, login_ago_s=31 * 60)
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert "_auth_user_id" not in client.session


def test_it_keeps_an_active_staff_session(login: Callable[[User], Client], bob: User) -> None:
    client = login(bob)
    _age_session(client, seen_ago_s=29 * 60, login_ago_s=5 * 3600)
    assert client.get("/").status_code == 200


def test_it_ends_a_staff_session_after_12_hours_whatever_the_activity(
    login: Callable[[User], Client], bob: User
) -> None:
    client = login(bob)
    _age_session(client, seen_ago_s=10, login_ago_s=12 * 3600 + 60)
    assert client.get("/").status_code == 302
    assert "_auth_user_id" not in client.session


def test_it_lets_patients_stay_signed_in(login: Callable[[User], Client], alice: User) -> None:
    client = login(alice)
    _age_session(client, seen_ago_s=5 * 3600, login_ago_s=20 * 3600)
    assert client.get("/").status_code == 200


@override_settings(STAFF_SESSION_IDLE_S=60)
def test_it_reads_the_idle_limit_from_settings(login: Callable[[User], Client], bob: User) -> None:
    client = login(bob)
    _age_session(client, seen_ago_s=61, login_ago_s=61)
    assert client.get("/").status_code == 302


def test_it_lists_and_ends_other_sessions(client: Client, alice: User) -> None:
    from tests.factories import PASSWORD

    other = Client()
    other.post("/accounts/login/", {"login": alice.email, "password": PASSWORD})
    client.post("/accounts/login/", {"login": alice.email, "password": PASSWORD})
    page = client.get("/accounts/sessions/")
    assert page.status_code == 200
    client.post("/accounts/sessions/", {"action": "sign_out_other"})
    assert "_auth_user_id" not in other.session
    assert other.get("/me/").status_code == 302
