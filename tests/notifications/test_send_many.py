"""Several logical messages in one go: the same rows as one
``notification_send`` each, in a constant number of queries."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.models import User
from apps.notifications.models import Category, Channel, Notification, NotificationPreference, QuietHours, SmsOptOut
from apps.notifications.services import OutgoingMessage, notification_send, notifications_send_many
from tests.factories import PatientFactory

pytestmark = [pytest.mark.sqlite, pytest.mark.django_db]


def _message(user: User, key: str, **kwargs: Any) -> OutgoingMessage:
    kwargs.setdefault("category", Category.APPOINTMENT)
    return OutgoingMessage(
        recipient=user, template="test/reminder", context={"doctor": "Dr Bob"}, idempotency_key=key, **kwargs
    )


def _patients(count: int) -> list[User]:
    return [PatientFactory(phone=None) for _ in range(count)]


def _with_phone(user: User) -> User:
    user.phone = f"+86139001{user.pk:05d}"
    user.save(update_fields=["phone"])
    return user


def _channels(rows: list[Notification], user: User) -> list[str]:
    return sorted(r.channel for r in rows if r.recipient_id == user.pk)


def _quiet_now(user: User) -> None:
    local = timezone.now().astimezone(zoneinfo.ZoneInfo(user.timezone))
    QuietHours.objects.create(
        user=user,
        start=(local - timedelta(hours=1)).time(),
        end=(local + timedelta(hours=2)).time().replace(second=0, microsecond=0),
    )


def _queries(messages: list[OutgoingMessage]) -> int:
    with CaptureQueriesContext(connection) as captured:
        notifications_send_many(messages=messages)
    return len(captured.captured_queries)


def test_it_writes_the_same_rows_as_one_send_per_message(alice: User, mallory: User) -> None:
    rows = notifications_send_many(messages=[_message(alice, "a"), _message(mallory, "m")])
    assert _channels(rows, alice) == ["email", "in_app", "sms"]
    assert _channels(rows, mallory) == ["email", "in_app"]  # no phone number
    assert Notification.objects.count() == 5
    assert all(r.pk is not None and r.status == "pending" for r in rows)


def test_its_queries_do_not_grow_with_the_number_of_messages_or_recipients() -> None:
    few = [_with_phone(p) for p in _patients(2)]
    many = [_with_phone(p) for p in _patients(5)]
    # Preferences, quiet hours, opt-outs, a savepoint, one insert, its
    # release (SQLite splits inserts of more than about 45 rows).
    assert _queries([_message(p, f"few-{p.pk}") for p in few]) == 6
    assert _queries([_message(p, f"many-{p.pk}-{n}") for p in many for n in range(3)]) == 6
    assert Notification.objects.count() == 3 * 2 + 3 * 5 * 3


def test_it_follows_each_recipients_preferences(alice: User) -> None:
    other = _with_phone(_patients(1)[0])
    NotificationPreference.objects.create(
        user=alice, category=Category.APPOINTMENT, sms=True, email=False, in_app=False
    )
    NotificationPreference.objects.create(user=other, category=Category.ACCOUNT, sms=False, email=False, in_app=True)
    rows = notifications_send_many(
        messages=[
            _message(alice, "a"),
            _message(other, "o-appointment"),
            _message(other, "o-account", category=Category.ACCOUNT),
            # Fixed channels take no notice of preferences.
            _message(alice, "a-fixed", channels=[Channel.IN_APP]),
        ]
    )
    by_key = {(r.idempotency_key, r.channel) for r in rows}
    assert by_key == {
        ("a", "sms"),
        ("o-appointment", "sms"),
        ("o-appointment", "email"),
        ("o-appointment", "in_app"),
        ("o-account", "in_app"),
        ("a-fixed", "in_app"),
    }


def test_it_holds_the_sms_of_recipients_in_quiet_hours_only(alice: User) -> None:
    other = _with_phone(_patients(1)[0])
    _quiet_now(alice)
    rows = notifications_send_many(
        messages=[_message(alice, "a"), _message(other, "o"), _message(alice, "a-urgent", urgent=True)]
    )
    due = {(r.idempotency_key, r.channel): r.due_at for r in rows}
    soon = timezone.now() + timedelta(minutes=1)
    assert due[("a", "sms")] > timezone.now() + timedelta(minutes=90)
    assert due[("a", "email")] <= soon
    assert due[("o", "sms")] <= soon
    assert due[("a-urgent", "sms")] <= soon


def test_a_reminder_in_quiet_hours_waits_for_their_end(alice: User) -> None:
    """The quiet hours that count are those at the time the message is due."""
    local_now = timezone.now().astimezone(zoneinfo.ZoneInfo(alice.timezone))
    later = timezone.now() + timedelta(hours=5)
    local_later = later.astimezone(zoneinfo.ZoneInfo(alice.timezone))
    QuietHours.objects.create(
        user=alice,
        start=(local_later - timedelta(hours=1)).time().replace(second=0, microsecond=0),
        end=(local_later + timedelta(hours=1)).time().replace(second=0, microsecond=0),
    )
    assert local_now.time() != local_later.time()
    [sms] = notifications_send_many(messages=[_message(alice, "r", channels=[Channel.SMS], not_before=later)])
    assert sms.due_at > later + timedelta(minutes=30)


def test_sms_to_a_number_that_opted_out_are_kept_dead(alice: User) -> None:
    other = _with_phone(_patients(1)[0])
    SmsOptOut.objects.create(phone=alice.phone, opted_out_at=timezone.now(), source="keyword", keyword="STOP")
    rows = notifications_send_many(messages=[_message(alice, "a"), _message(other, "o")])
    status = {(r.recipient_id, r.channel): (r.status, r.enqueued_at is None) for r in rows}
    assert status[(alice.pk, "sms")] == ("dead", True)
    assert status[(alice.pk, "email")] == ("pending", False)
    assert status[(other.pk, "sms")] == ("pending", False)


def test_asking_again_creates_nothing_new_and_returns_the_stored_rows(alice: User, mallory: User) -> None:
    first = notifications_send_many(messages=[_message(alice, "a"), _message(mallory, "m")])
    again = notifications_send_many(
        messages=[_message(alice, "a"), _message(mallory, "m"), _message(mallory, "m-new", channels=[Channel.EMAIL])]
    )
    assert Notification.objects.count() == 6
    assert {r.pk for r in first} < {r.pk for r in again}
    assert [(r.idempotency_key, r.channel) for r in again if r.pk not in {f.pk for f in first}] == [("m-new", "email")]
    # The single-message function shares the keys.
    assert {
        r.pk
        for r in notification_send(
            recipient=alice, category=Category.APPOINTMENT, template="test/reminder", context={}, idempotency_key="a"
        )
    } == {r.pk for r in first if r.recipient_id == alice.pk}


def test_the_same_message_twice_in_one_batch_is_one_row(alice: User) -> None:
    rows = notifications_send_many(messages=[_message(alice, "a", channels=[Channel.SMS])] * 2)
    assert len(rows) == 1
    assert Notification.objects.count() == 1


def test_it_enqueues_what_is_due_now_with_one_broker_message(
    alice: User, mallory: User, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    from apps.notifications import tasks

    sent: list[list[int]] = []
    monkeypatch.setattr(tasks.notifications_deliver_task, "delay", sent.append)
    with django_capture_on_commit_callbacks(execute=True):
        rows = notifications_send_many(
            messages=[
                _message(alice, "now", urgent=True),
                _message(mallory, "now-too"),
                _message(alice, "later", not_before=timezone.now() + timedelta(hours=3)),
            ]
        )
    due_now = sorted(r.pk for r in rows if r.idempotency_key != "later")
    assert len(sent) == 1
    assert sorted(sent[0]) == due_now
    # Asking again enqueues nothing: nothing new was written.
    with django_capture_on_commit_callbacks(execute=True):
        notifications_send_many(messages=[_message(alice, "now", urgent=True)])
    assert len(sent) == 1


def test_no_messages_cost_no_query() -> None:
    assert _queries([]) == 0
