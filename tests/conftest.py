"""Shared fixtures: the named people of every test.

Alice is a patient, Bob is her doctor, Carol is the admin of their clinic,
and Mallory has an account and no right to anything of theirs.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client

from apps.accounts.models import User
from apps.accounts.services import consent_give
from apps.clinics.models import Clinic
from apps.notifications.models import OutboxMessage
from tests.factories import ClinicFactory, PatientFactory, make_clinic_admin, make_doctor
from tests.services import redis_url

# Playwright's sync API runs an event loop in the test thread; Django's ORM
# must still be usable from the test itself.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_configure(config: pytest.Config) -> None:
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Tests render templates without running collectstatic first.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _english_and_clean_cache(settings: object) -> None:
    from django.core.cache import cache

    settings.LANGUAGE_CODE = "en"  # type: ignore[attr-defined]
    cache.clear()


@pytest.fixture(autouse=True)
def _celery_eager() -> Iterator[None]:
    """Unit tests run Celery tasks in-process; the delivery tests that need a
    real worker switch this off (tests/notifications/workers.py)."""
    from telemed.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


def sms_sent(to: str | None = None) -> list[OutboxMessage]:
    """SMS the console backend 'sent', oldest first."""
    messages = OutboxMessage.objects.filter(channel="sms").order_by("id")
    if to is not None:
        messages = messages.filter(to=to)
    return list(messages)


def sms_code(to: str) -> str:
    """The six-digit code in the latest SMS to ``to``."""
    import re

    sent = sms_sent(to)
    assert sent, f"no SMS was sent to {to}"
    match = re.search(r"\d{6}", sent[-1].body)
    assert match, sent[-1].body
    return match.group(0)


@pytest.fixture
def deliver(django_capture_on_commit_callbacks: Callable[..., Any]) -> Callable[[], Any]:
    """``with deliver():`` runs what the block's transactions enqueued on
    commit (the notification tasks, eagerly) when the block ends."""

    def _deliver() -> Any:
        return django_capture_on_commit_callbacks(execute=True)

    return _deliver


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reaches outside this machine."""
    import socket

    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        if isinstance(address, tuple) and address and isinstance(address[0], str):
            host = address[0]
            if not (host.startswith("127.") or host in {"localhost", "::1"}):
                raise OSError(f"tests may not reach {host}")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def clinic(db: None) -> Clinic:
    return ClinicFactory(name="Hillside Clinic")


@pytest.fixture
def alice(db: None) -> User:
    patient = PatientFactory(full_name="Alice", email="alice@example.org", phone="+8613800138000", phone_verified=True)
    consent_give(patient=patient, given_by=patient)
    return patient


@pytest.fixture
def bob(clinic: Clinic) -> User:
    return make_doctor(clinic=clinic, full_name="Bob", email="bob@example.org")


@pytest.fixture
def carol(clinic: Clinic) -> User:
    return make_clinic_admin(clinic=clinic, full_name="Carol", email="carol@example.org")


@pytest.fixture
def mallory(db: None) -> User:
    return PatientFactory(full_name="Mallory", email="mallory@example.org")


@pytest.fixture
def login(client: Client) -> Callable[[User], Client]:
    def _login(user: User) -> Client:
        client.force_login(user)
        return client

    return _login


def signed_in(user: User) -> Client:
    """A client of its own signed in as ``user``: its session cookie opens a
    socket (``login`` shares the test's one client)."""
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture(
    params=[
        # The embedded mode's layer, also run on SQLite (`make run`'s database).
        pytest.param("memory", marks=pytest.mark.sqlite),
        pytest.param("redis", marks=pytest.mark.redis),
    ]
)
def channel_layer(request: pytest.FixtureRequest, settings: Any) -> Iterator[str]:
    """Each socket test that asks for it runs on the in-memory layer and on
    channels-redis."""
    if request.param == "memory":
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    else:
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [redis_url()], "prefix": f"test-{uuid.uuid4().hex[:8]}"},
            }
        }
    yield request.param
