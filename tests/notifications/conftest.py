"""Fixtures for notification tests: a local SMTP server, a local SMS gateway
and real Celery workers (see ``tests/notifications/workers.py``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import time
from typing import Any

import pytest

from tests.notifications.servers import SmsGateway, SmtpServer
from tests.notifications.workers import CeleryWorker, StartWorker, start_worker
from tests.services import redis_url, require_postgres


@pytest.fixture(autouse=True)
def _no_default_quiet_hours(monkeypatch: pytest.MonkeyPatch) -> None:
    """Users without quiet hours of their own get none here, so that these
    tests pass at any hour of the day (the default 22:00-07:00 would hold an
    SMS sent while the suite runs at night). Tests of quiet hours set a
    user's own, around the present moment or a travelled-to one."""
    from apps.notifications import services

    monkeypatch.setattr(services, "DEFAULT_QUIET_START", time(0))
    monkeypatch.setattr(services, "DEFAULT_QUIET_END", time(0))


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sms_gateway() -> Iterator[SmsGateway]:
    gateway = SmsGateway()
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture
def email_via_smtp_server(smtp_server: SmtpServer, settings: Any) -> SmtpServer:
    """This process sends email through ``smtp_server`` (Django's SMTP backend)."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = smtp_server.host
    settings.EMAIL_PORT = smtp_server.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 10
    return smtp_server


@pytest.fixture
def sms_via_gateway(sms_gateway: SmsGateway, settings: Any) -> SmsGateway:
    """This process sends SMS through ``sms_gateway`` (``HttpSmsBackend``)."""
    settings.SMS_BACKEND = "apps.notifications.sms.HttpSmsBackend"
    settings.SMS_HTTP_URL = sms_gateway.url
    settings.SMS_HTTP_API_KEY = sms_gateway.api_key
    return sms_gateway


@pytest.fixture
def celery_to_redis() -> Iterator[str]:
    """Tasks sent by this process go to Redis, not run eagerly; yields the broker URL."""
    from telemed.celery import app

    broker = redis_url()
    saved = {key: app.conf[key] for key in ("task_always_eager", "broker_url")}
    _forget_broker_connections()
    app.conf.update(task_always_eager=False, broker_url=broker)
    try:
        yield broker
    finally:
        app.conf.update(saved)
        _forget_broker_connections()


def _forget_broker_connections() -> None:
    """Drop the app's cached connection and producer pools, which were made
    for the broker URL of the moment (the same as Celery does after a fork)."""
    from telemed.celery import app

    app._pool = None  # kombu keeps the pools themselves, for reuse: don't close them
    if "amqp" in app.__dict__:
        app.amqp._producer_pool = None


@pytest.fixture
def start_celery_worker(transactional_db: None) -> Iterator[StartWorker]:
    """``start_celery_worker(env_overrides, queue=..., pool=..., concurrency=...)``
    starts a real worker on the test database; every worker is stopped afterwards.

    Requesting this fixture makes the test transactional, as a worker needs."""
    require_postgres()
    workers: list[CeleryWorker] = []

    def start(
        env_overrides: Mapping[str, object] | None = None,
        *,
        queue: str | None = None,
        queues: Sequence[str] | None = None,
        pool: str = "prefork",
        concurrency: int = 1,
        loglevel: str = "WARNING",
        wait_ready: bool = True,
    ) -> CeleryWorker:
        worker = start_worker(
            env_overrides,
            queue=queue,
            queues=queues,
            pool=pool,
            concurrency=concurrency,
            loglevel=loglevel,
            wait_ready=wait_ready,
        )
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
        worker.log_path.unlink(missing_ok=True)
