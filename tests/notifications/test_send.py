from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from apps.accounts.models import User
from apps.notifications.models import Category, Channel, Notification, NotificationPreference, QuietHours, SmsOptOut
from apps.notifications.rendering import notification_render
from apps.notifications.services import (
    notification_deliver,
    notification_send,
    notifications_enqueue_due,
    quiet_hours_end_after,
)
from tests.conftest import sms_sent

TEMPLATES = Path(__file__).parent / "templates"
Deliver = Callable[[], Any]


@pytest.fixture(autouse=True)
def _test_templates(settings: Any) -> Iterator[None]:
    engine = dict(settings.TEMPLATES[0])
    engine["DIRS"] = [*engine["DIRS"], TEMPLATES]
    settings.TEMPLATES = [engine]
    yield


def _send(user: User, key: str = "reminder-1", **kwargs: Any) -> list[Notification]:
    kwargs.setdefault("category", Category.APPOINTMENT)
    return notification_send(
        recipient=user,
        template="test/reminder",
        context={"starts_at": "2026-03-02T01:30:00+00:00", "doctor": "Dr Bob"},
        idempotency_key=key,
        **kwargs,
    )


def _quiet_now(user: User) -> None:
    """Quiet hours that include the present moment in the user's zone."""
    local = timezone.now().astimezone(zoneinfo.ZoneInfo(user.timezone))
    QuietHours.objects.create(
        user=user,
        start=(local - timedelta(hours=1)).time(),
        end=(local + timedelta(hours=2)).time().replace(second=0, microsecond=0),
    )


def test_it_writes_one_row_per_channel_the_preferences_choose(alice: User) -> None:
    rows = _send(alice)
    assert sorted(r.channel for r in rows) == ["email", "in_app", "sms"]
    assert all(r.status == "pending" and r.language == "en" for r in rows)


def test_the_same_logical_message_twice_is_one_notification(alice: User) -> None:
    _send(alice)
    _send(alice)
    assert Notification.objects.filter(idempotency_key="reminder-1").count() == 3


def test_it_follows_the_users_preferences(alice: User) -> None:
    NotificationPreference.objects.create(
        user=alice, category=Category.APPOINTMENT, sms=True, email=False, in_app=False
    )
    assert [r.channel for r in _send(alice)] == ["sms"]


def test_it_skips_channels_that_cannot_reach_the_user(mallory: User) -> None:
    # Mallory has no phone number.
    assert sorted(r.channel for r in _send(mallory)) == ["email", "in_app"]


def test_it_holds_non_urgent_sms_during_quiet_hours(alice: User) -> None:
    _quiet_now(alice)
    rows = {r.channel: r for r in _send(alice)}
    assert rows["sms"].due_at > timezone.now() + timedelta(minutes=90)
    assert rows["email"].due_at <= timezone.now()
    assert rows["in_app"].due_at <= timezone.now()


def test_urgent_sms_ignore_quiet_hours(alice: User) -> None:
    _quiet_now(alice)
    rows = {r.channel: r for r in _send(alice, urgent=True, category=Category.READINGS_ALERT)}
    assert rows["sms"].due_at <= timezone.now()


@pytest.mark.sqlite
@pytest.mark.parametrize(
    ("local", "zone", "expected"),
    [
        ("2026-06-01 23:30", "Asia/Shanghai", "2026-06-02 07:00"),
        ("2026-06-01 06:59", "Asia/Shanghai", "2026-06-01 07:00"),
        ("2026-06-01 07:00", "Asia/Shanghai", None),
        ("2026-06-01 21:59", "Asia/Shanghai", None),
        ("2026-06-01 22:00", "Asia/Shanghai", "2026-06-02 07:00"),
        # The night the clocks go forward in London: 07:00 is still 07:00 local.
        ("2026-03-28 23:00", "Europe/London", "2026-03-29 07:00"),
    ],
)
def test_quiet_hours_end_at_the_local_morning(local: str, zone: str, expected: str | None) -> None:
    tz = zoneinfo.ZoneInfo(zone)
    moment = datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=tz)
    end = quiet_hours_end_after(moment=moment, zone_name=zone, start=time(22), end=time(7))
    if expected is None:
        assert end is None
    else:
        assert end is not None
        assert end.astimezone(tz).strftime("%Y-%m-%d %H:%M") == expected
        assert end.utcoffset() == datetime.strptime(expected, "%Y-%m-%d %H:%M").replace(tzinfo=tz).utcoffset()


def test_it_does_not_text_a_number_that_opted_out(alice: User, deliver: Deliver) -> None:
    SmsOptOut.objects.create(phone=alice.phone, opted_out_at=timezone.now(), source="keyword", keyword="STOP")
    with deliver():
        rows = {r.channel: r for r in _send(alice)}
    assert rows["sms"].status == "dead"
    assert "opted out" in rows["sms"].last_error
    assert sms_sent(alice.phone) == []


def test_it_delivers_each_channel_once_in_the_recipients_language_and_zone(alice: User, deliver: Deliver) -> None:
    from django.core import mail

    User.objects.filter(pk=alice.pk).update(language="zh-hans", timezone="Asia/Shanghai")
    alice.refresh_from_db()
    with deliver():
        rows = _send(alice)
    for row in rows:
        row.refresh_from_db()
        assert row.status == "sent", (row.channel, row.last_error)
        assert row.attempts == 1
    [sms] = sms_sent(alice.phone)
    # 01:30 UTC is 09:30 in Shanghai; the text is the zh-hans translation.
    assert sms.body == "Telemed 远程医疗 2026-03-02 09:30 Dr Bob"
    assert mail.outbox[0].subject == "欢迎使用 Telemed"
    assert mail.outbox[0].alternatives[0][0] == "<p>Dr Bob at 09:30</p>\n"
    # Running the task again sends nothing more.
    for row in rows:
        assert notification_deliver(notification_id=row.pk) == "skipped"
    assert len(sms_sent(alice.phone)) == 1
    assert len(mail.outbox) == 1


def test_a_sensitive_message_leaves_no_details_in_sent_sms_and_email_but_stays_readable_in_the_app(
    alice: User, deliver: Deliver
) -> None:
    with deliver():
        rows = _send(alice, channels=["sms", "email", "in_app"], sensitive=True)
    stored = {row.channel: Notification.objects.get(pk=row.pk) for row in rows}
    assert {row.status for row in stored.values()} == {"sent"}
    assert stored["sms"].context == {} and stored["email"].context == {}
    # The inbox and the live notice render the in-app row again later.
    assert stored["in_app"].context["doctor"] == "Dr Bob"
    assert "Dr Bob" in notification_render(stored["in_app"]).text


def test_the_scan_enqueues_due_work_once(alice: User) -> None:
    _quiet_now(alice)
    rows = {r.channel: r for r in _send(alice)}
    sms = rows["sms"]
    assert notifications_enqueue_due() == 0  # the SMS waits for the morning; the others were queued on commit
    Notification.objects.filter(pk=sms.pk).update(due_at=timezone.now() - timedelta(seconds=1))
    assert notifications_enqueue_due() == 1
    sms.refresh_from_db()
    assert sms.status == "sent"
    assert notifications_enqueue_due() == 0


def test_the_scan_takes_over_from_a_vanished_worker(alice: User, settings: Any) -> None:
    [row] = notification_send(
        recipient=alice,
        category=Category.ACCOUNT,
        template="test/reminder",
        context={"starts_at": "2026-03-02T01:30:00+00:00", "doctor": "Dr Bob"},
        idempotency_key="lost",
        channels=[Channel.SMS],
    )
    # A worker claimed it, then died: its lease runs out.
    Notification.objects.filter(pk=row.pk).update(
        status="sending", attempts=1, lease_until=timezone.now() - timedelta(seconds=1), enqueued_at=timezone.now()
    )
    assert notifications_enqueue_due() == 1
    row.refresh_from_db()
    assert row.status == "sent"
    assert row.attempts == 2


def test_a_claimed_notification_is_not_sent_by_a_second_task(alice: User) -> None:
    [row] = notification_send(
        recipient=alice,
        category=Category.ACCOUNT,
        template="test/reminder",
        context={"starts_at": "2026-03-02T01:30:00+00:00", "doctor": "Dr Bob"},
        idempotency_key="held",
        channels=[Channel.SMS],
    )
    Notification.objects.filter(pk=row.pk).update(status="sending", lease_until=timezone.now() + timedelta(minutes=1))
    assert notification_deliver(notification_id=row.pk) == "skipped"
    assert sms_sent(alice.phone) == []


def test_a_missing_template_is_a_permanent_failure(alice: User) -> None:
    [row] = notification_send(
        recipient=alice,
        category=Category.ACCOUNT,
        template="no/such",
        context={},
        idempotency_key="x",
        channels=[Channel.SMS],
    )
    assert notification_deliver(notification_id=row.pk) == "dead"
    row.refresh_from_db()
    assert row.status == "dead"
    assert row.attempts == 1


def test_sent_times_are_stored_in_utc(alice: User, deliver: Deliver) -> None:
    with deliver():
        rows = _send(alice)
    row = Notification.objects.get(pk=rows[0].pk)
    assert row.sent_at is not None
    assert row.sent_at.utcoffset() == UTC.utcoffset(None)
