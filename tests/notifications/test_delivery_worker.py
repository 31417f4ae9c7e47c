"""Delivery by real Celery workers on Redis, to a local SMS gateway and a
local SMTP server. PostgreSQL only: the worker process must see the rows."""

from __future__ import annotations

from typing import Any

import pytest

from apps.accounts.models import User
from apps.notifications.models import Category, Channel, Notification
from apps.notifications.services import notification_send, notifications_enqueue_due
from tests.factories import PatientFactory
from tests.notifications.servers import SmsGateway, SmtpServer
from tests.notifications.workers import StartWorker, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _worker_env(gateway: SmsGateway, smtp: SmtpServer | None = None, **extra: object) -> dict[str, object]:
    env: dict[str, object] = {**gateway.worker_env(), "NOTIFICATIONS_RETRY_BASE_S": 1, "NOTIFICATIONS_RETRY_MAX_S": 2}
    if smtp is not None:
        env.update(smtp.worker_env())
    env.update(extra)
    return env


def _patient(n: int) -> User:
    return PatientFactory(email=f"p{n}@example.org", phone=f"+86138001390{n:02d}", language="en")


def _reminder(user: User, key: str, **kwargs: Any) -> list[Notification]:
    kwargs.setdefault("category", Category.APPOINTMENT)
    return notification_send(recipient=user, template="account/welcome", context={}, idempotency_key=key, **kwargs)


def _statuses(keys: list[str]) -> list[str]:
    return list(Notification.objects.filter(idempotency_key__in=keys).values_list("status", flat=True))


def test_a_worker_delivers_sms_and_email(
    start_celery_worker: StartWorker, celery_to_redis: str, sms_gateway: SmsGateway, smtp_server: SmtpServer
) -> None:
    worker = start_celery_worker(_worker_env(sms_gateway, smtp_server), queue="celery")
    alice = _patient(1)
    rows = notification_send(
        recipient=alice,
        category=Category.APPOINTMENT,
        template="account/staff_invitation",
        context={"clinic": "Hillside Clinic", "role": "Doctor", "link": "https://telemed.example/i/x", "days": 7},
        idempotency_key="booked-1",
        channels=[Channel.SMS, Channel.EMAIL],
        attachments=[
            {"filename": "consult.ics", "content": "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", "mimetype": "text/calendar"}
        ],
    )
    wait_until(lambda: _statuses(["booked-1"]) == ["sent", "sent"], 30, "both channels sent", worker=worker)
    [sms] = sms_gateway.accepted
    assert sms.to == alice.phone
    assert sms.text == "Telemed: join Hillside Clinic as Doctor: https://telemed.example/i/x"
    assert sms.idempotency_key == f"telemed-notification-{next(r for r in rows if r.channel == 'sms').pk}"
    [email] = smtp_server.wait_for(1)
    assert email["To"] == alice.email
    assert email["Subject"] == "Invitation to join Hillside Clinic on Telemed"
    text = email.get_body(preferencelist=("plain",))
    assert text is not None and "https://telemed.example/i/x" in text.get_content()
    html = email.get_body(preferencelist=("html",))
    assert html is not None and '<a href="https://telemed.example/i/x">' in html.get_content()
    [attachment] = list(email.iter_attachments())
    assert attachment.get_filename() == "consult.ics"
    assert attachment.get_content_type() == "text/calendar"


def test_temporary_failures_are_retried_until_sent(
    start_celery_worker: StartWorker, celery_to_redis: str, sms_gateway: SmsGateway, settings: Any
) -> None:
    worker = start_celery_worker(_worker_env(sms_gateway), queue="celery")
    sms_gateway.fail_next(2, status=503)
    alice = _patient(2)
    [row] = _reminder(alice, "retry-1", channels=[Channel.SMS])

    def sent() -> bool:
        notifications_enqueue_due()  # what beat does every few seconds
        row.refresh_from_db()
        return row.status == "sent"

    wait_until(sent, 60, "the SMS was sent after two temporary failures", interval_s=0.5, worker=worker)
    assert row.attempts == 3
    assert len(sms_gateway.requests) == 3
    assert len(sms_gateway.accepted) == 1


def test_a_permanent_failure_is_not_retried(
    start_celery_worker: StartWorker, celery_to_redis: str, sms_gateway: SmsGateway
) -> None:
    worker = start_celery_worker(_worker_env(sms_gateway), queue="celery")
    alice = _patient(3)
    sms_gateway.reject_number(str(alice.phone), status=400)
    [row] = _reminder(alice, "invalid-1", channels=[Channel.SMS])
    wait_until(lambda: Notification.objects.get(pk=row.pk).status == "dead", 30, "marked dead", worker=worker)
    row.refresh_from_db()
    assert row.attempts == 1
    assert "refused" in row.last_error
    notifications_enqueue_due()
    assert len(sms_gateway.requests) == 1


def test_it_gives_up_after_the_last_attempt(
    start_celery_worker: StartWorker, celery_to_redis: str, sms_gateway: SmsGateway, settings: Any
) -> None:
    worker = start_celery_worker(_worker_env(sms_gateway, NOTIFICATIONS_MAX_ATTEMPTS=2), queue="celery")
    sms_gateway.fail_next(10, status=503)
    [row] = _reminder(_patient(4), "hopeless", channels=[Channel.SMS])

    def dead() -> bool:
        notifications_enqueue_due()
        row.refresh_from_db()
        return row.status == "dead"

    wait_until(dead, 60, "dead after two attempts", interval_s=0.5, worker=worker)
    assert row.attempts == 2
    assert "gave up after 2 attempts" in row.last_error


def test_a_worker_killed_mid_delivery_still_sends_every_message_once(
    start_celery_worker: StartWorker, celery_to_redis: str, sms_gateway: SmsGateway, settings: Any
) -> None:
    # The scan in this process takes over abandoned rows after 3 s, and
    # re-queues rows whose queued task died with the worker after 3 s too.
    settings.NOTIFICATIONS_LEASE_S = 3
    settings.NOTIFICATIONS_REQUEUE_AFTER_S = 3
    env = _worker_env(sms_gateway, NOTIFICATIONS_LEASE_S=3)
    first = start_celery_worker(env, queue="celery")
    sms_gateway.hold()  # the gateway takes the first message, then keeps the worker waiting
    keys = [f"crash-{n}" for n in range(6)]
    for n, key in enumerate(keys):
        _reminder(_patient(10 + n), key, channels=[Channel.SMS])
    sms_gateway.wait_for_requests(1, timeout_s=30)
    first.kill()  # SIGKILL while that delivery is in flight
    sms_gateway.release()  # the gateway accepts the message its caller never heard back about

    second = start_celery_worker(env, queue="celery")

    def all_sent() -> bool:
        notifications_enqueue_due()
        return _statuses(keys) == ["sent"] * len(keys)

    wait_until(all_sent, 90, "every notification sent after the crash", interval_s=0.5, worker=second)
    assert len(sms_gateway.accepted) == len(keys)
    assert set(sms_gateway.accepted_count_by_key.values()) == {1}
    # The in-flight message was sent again after the crash, with the same key,
    # and the gateway counted it once.
    assert sms_gateway.duplicates == 1
    assert sorted(a.to for a in sms_gateway.accepted) == sorted(f"+86138001390{10 + n:02d}" for n in range(len(keys)))
