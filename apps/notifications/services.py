"""Writing and delivering notifications.

``notification_send`` writes one row per channel in the caller's transaction
and enqueues delivery when it commits; ``notifications_send_many`` does the
same for several logical messages at once, in a constant number of queries. ``notification_deliver`` (run by a
Celery task) claims a row with a conditional UPDATE, so that however often
the task runs, one run sends. Rows that wait (quiet hours, retries, a lost
task) are found by ``notifications_enqueue_due``, which beat runs.
"""

from __future__ import annotations

import logging
import random
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template import TemplateDoesNotExist
from django.utils import timezone

from apps.accounts.models import User
from apps.notifications.models import (
    DEFAULT_QUIET_END,
    DEFAULT_QUIET_START,
    Category,
    Channel,
    Notification,
    NotificationPreference,
    QuietHours,
    SmsOptOut,
    SmsOptOutSource,
    Status,
)
from apps.notifications.rendering import notification_render
from apps.notifications.senders import (
    PermanentDeliveryError,
    TemporaryDeliveryError,
    send_email,
    send_in_app,
    send_sms,
)

logger = logging.getLogger(__name__)

OPTED_OUT = "the recipient opted out of SMS (STOP)"

DEFAULT_CHANNELS: dict[str, frozenset[str]] = {
    Category.APPOINTMENT: frozenset({Channel.SMS, Channel.EMAIL, Channel.IN_APP}),
    Category.CONSULT: frozenset({Channel.SMS, Channel.IN_APP}),
    Category.READINGS_ALERT: frozenset({Channel.SMS, Channel.IN_APP}),
    Category.ACCOUNT: frozenset({Channel.SMS, Channel.EMAIL}),
}


# --- Preferences ------------------------------------------------------------


def preferred_channels(*, user: User, category: str) -> frozenset[str]:
    preference = NotificationPreference.objects.filter(user=user, category=category).first()
    return _chosen_channels(preference, category)


def _chosen_channels(preference: NotificationPreference | None, category: str) -> frozenset[str]:
    if preference is None:
        return DEFAULT_CHANNELS[category]
    chosen = {
        channel
        for channel, wanted in (
            (Channel.SMS, preference.sms),
            (Channel.EMAIL, preference.email),
            (Channel.IN_APP, preference.in_app),
        )
        if wanted
    }
    return frozenset(chosen)


def reachable_channels(*, user: User) -> frozenset[str]:
    reachable = {Channel.IN_APP}
    if user.phone:
        reachable.add(Channel.SMS)
    if user.email:
        reachable.add(Channel.EMAIL)
    return frozenset(reachable)


def sms_is_opted_out(*, phone: str) -> bool:
    return SmsOptOut.objects.filter(phone=phone, opted_in_at__isnull=True).exists()


def quiet_hours_end_after(*, moment: datetime, zone_name: str, start: time, end: time) -> datetime | None:
    """If ``moment`` falls in the quiet hours (wall-clock times in
    ``zone_name``), the moment they end; else None."""
    try:
        zone = zoneinfo.ZoneInfo(zone_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo(settings.DEFAULT_USER_TIME_ZONE)
    local = moment.astimezone(zone)
    now_t = local.time()
    quiet = (start <= now_t < end) if start < end else (now_t >= start or now_t < end)
    if not quiet or start == end:
        return None
    end_day = local.date() if now_t < end else local.date() + timedelta(days=1)
    return datetime.combine(end_day, end, tzinfo=zone)


# --- Sending ----------------------------------------------------------------


def _enqueue_on_commit(notifications: Iterable[Notification]) -> None:
    """Once the caller's transaction commits, one broker message for the
    rows that are due now (rows due later wait for beat's scan)."""
    ids = [n.pk for n in notifications if n.status == Status.PENDING and n.enqueued_at is not None]
    if not ids:
        return

    def enqueue() -> None:
        from apps.notifications.tasks import notifications_deliver_task

        try:
            notifications_deliver_task.delay(ids)
        except Exception:  # the broker is down: beat's scan will find the rows
            logger.warning("could not enqueue notifications %s; the periodic scan will", ids)

    transaction.on_commit(enqueue)


@dataclass(frozen=True)
class OutgoingMessage:
    """One logical message to a user; see ``notification_send`` for the fields."""

    recipient: User
    category: str
    template: str
    context: dict[str, Any]
    idempotency_key: str
    urgent: bool = False
    clinic_id: int | None = None
    attachments: list[dict[str, Any]] | None = None
    channels: Iterable[str] | None = None
    sensitive: bool = False
    not_before: datetime | None = None


def notification_send(
    *,
    recipient: User,
    category: str,
    template: str,
    context: dict[str, Any],
    idempotency_key: str,
    urgent: bool = False,
    clinic_id: int | None = None,
    attachments: list[dict[str, Any]] | None = None,
    channels: Iterable[str] | None = None,
    sensitive: bool = False,
    not_before: datetime | None = None,
) -> list[Notification]:
    """One logical message to a user, on each channel their preferences for
    ``category`` choose (or exactly ``channels``) and that can reach them.
    ``not_before`` schedules it (a reminder); the beat scan sends it then.
    Non-urgent SMS wait for the end of the recipient's quiet hours; SMS to a
    number that opted out are stored dead.

    Asking again with the same ``idempotency_key`` creates nothing new."""
    message = OutgoingMessage(
        recipient=recipient,
        category=category,
        template=template,
        context=context,
        idempotency_key=idempotency_key,
        urgent=urgent,
        clinic_id=clinic_id,
        attachments=attachments,
        channels=channels,
        sensitive=sensitive,
        not_before=not_before,
    )
    return notifications_send_many(messages=[message])


def notifications_send_many(*, messages: Sequence[OutgoingMessage]) -> list[Notification]:
    """Several logical messages at once, each as ``notification_send`` would
    send it, in a constant number of queries whatever their number: the
    recipients' preferences, quiet hours and SMS opt-outs (each only when
    needed), the rows already stored under the messages' idempotency keys,
    one insert and one read back. Returns the stored rows of every message
    (new and earlier ones); one broker message enqueues those due now."""
    now = timezone.now()
    preferences = _preferences(messages)
    rows: list[Notification] = []
    for message in messages:
        recipient = message.recipient
        if message.channels is not None:
            wanted = frozenset(message.channels)
        else:
            wanted = _chosen_channels(preferences.get((recipient.pk, message.category)), message.category)
        send_at = max(now, message.not_before) if message.not_before else now
        rows += [
            Notification(
                recipient=recipient,
                clinic_id=message.clinic_id,
                category=message.category,
                channel=channel,
                template=message.template,
                context=message.context,
                attachments=message.attachments or [],
                language=recipient.language,
                urgent=message.urgent,
                sensitive=message.sensitive,
                idempotency_key=message.idempotency_key,
                due_at=send_at,
            )
            for channel in sorted(wanted & reachable_channels(user=recipient))
        ]
    _hold_for_quiet_hours(rows)
    return _store(rows, now=now)


def _preferences(messages: Sequence[OutgoingMessage]) -> dict[tuple[int, str], NotificationPreference]:
    """The preferences the messages without fixed channels need, in one query (none if none)."""
    asked = {(m.recipient.pk, m.category) for m in messages if m.channels is None}
    if not asked:
        return {}
    rows = NotificationPreference.objects.filter(
        user_id__in={user_id for user_id, _ in asked}, category__in={category for _, category in asked}
    )
    return {(p.user_id, p.category): p for p in rows}


def _hold_for_quiet_hours(rows: list[Notification]) -> None:
    """Non-urgent SMS to a user wait for the end of their quiet hours (one
    query for all users; none if no such SMS)."""
    held: list[tuple[Notification, User]] = []
    for row in rows:
        if row.channel == Channel.SMS and not row.urgent and row.recipient is not None:
            held.append((row, row.recipient))
    if not held:
        return
    hours = {
        user_id: (start, end)
        for user_id, start, end in QuietHours.objects.filter(user__in={user for _, user in held}).values_list(
            "user_id", "start", "end"
        )
    }
    for row, user in held:
        start, end = hours.get(user.pk, (DEFAULT_QUIET_START, DEFAULT_QUIET_END))
        row.due_at = (
            quiet_hours_end_after(moment=row.due_at, zone_name=user.timezone, start=start, end=end) or row.due_at
        )


def notification_send_to_address(
    *,
    channel: str,
    destination: str,
    category: str,
    template: str,
    context: dict[str, Any],
    language: str,
    idempotency_key: str,
    clinic_id: int | None = None,
    sensitive: bool = False,
) -> list[Notification]:
    """A message to a phone number or email address without an account (an
    invitation, a reply to a code request for an unknown number)."""
    now = timezone.now()
    row = Notification(
        destination=destination,
        clinic_id=clinic_id,
        category=category,
        channel=channel,
        template=template,
        context=context,
        language=language,
        urgent=True,
        sensitive=sensitive,
        idempotency_key=idempotency_key,
        due_at=now,
    )
    return _store([row], now=now)


def _store(rows: list[Notification], *, now: datetime) -> list[Notification]:
    """Insert the rows whose (idempotency key, channel) is not stored yet, in
    the caller's transaction; return the stored rows of every key and
    channel asked for, and enqueue the new ones due now on commit.

    New keys, the usual case, cost one insert (in a savepoint); a key
    already stored makes it fail, and then the rows not stored yet are
    inserted and every row read back."""
    if not rows:
        return []
    _mark_opted_out(rows)
    for row in rows:
        if row.status != Status.DEAD and row.due_at <= now:
            row.enqueued_at = now
    wanted: dict[tuple[str, str], Notification] = {}
    for row in rows:
        wanted.setdefault(_pair(row), row)  # the first of duplicates wins
    new_rows = list(wanted.values())
    try:
        with transaction.atomic():
            Notification.objects.bulk_create(new_rows)  # sets their ids (RETURNING)
    except IntegrityError:
        return _store_some_known(new_rows)
    _enqueue_on_commit(new_rows)
    return _sorted(new_rows)


def _store_some_known(rows: list[Notification]) -> list[Notification]:
    """``_store`` when some of the rows' keys and channels are stored already
    (the same message asked for again, or by a concurrent writer): those stay
    as they are."""
    for row in rows:
        row.pk = None  # the failed insert may have set some
    keys = {row.idempotency_key for row in rows}
    wanted = {_pair(row) for row in rows}
    earlier = set(Notification.objects.filter(idempotency_key__in=keys).values_list("idempotency_key", "channel"))
    Notification.objects.bulk_create([row for row in rows if _pair(row) not in earlier], ignore_conflicts=True)
    stored = [row for row in Notification.objects.filter(idempotency_key__in=keys) if _pair(row) in wanted]
    _enqueue_on_commit(row for row in stored if _pair(row) not in earlier)
    return _sorted(stored)


def _pair(row: Notification) -> tuple[str, str]:
    return (row.idempotency_key, row.channel)


def _sorted(rows: list[Notification]) -> list[Notification]:
    return sorted(rows, key=_pair)


def _mark_opted_out(rows: list[Notification]) -> None:
    """SMS to numbers that opted out are kept, not skipped, so that admins
    see why nothing reached the patient (one query; none without SMS)."""
    phones = {_phone(row) for row in rows if row.channel == Channel.SMS}
    if not phones:
        return
    opted_out = set(
        SmsOptOut.objects.filter(phone__in=phones, opted_in_at__isnull=True).values_list("phone", flat=True)
    )
    for row in rows:
        if row.channel == Channel.SMS and _phone(row) in opted_out:
            row.status = Status.DEAD
            row.last_error = OPTED_OUT


def _phone(row: Notification) -> str:
    return row.destination or (row.recipient.phone if row.recipient else "") or ""


# --- Delivering ---------------------------------------------------------------


def retry_delay(attempt: int) -> timedelta:
    """Exponential backoff with full jitter: up to base·2^(attempt-1), capped."""
    ceiling = min(settings.NOTIFICATIONS_RETRY_MAX_S, settings.NOTIFICATIONS_RETRY_BASE_S * 2 ** max(0, attempt - 1))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))  # noqa: S311  # jitter, not a secret


def _claim(notification_id: int, now: datetime) -> bool:
    lease = timedelta(seconds=settings.NOTIFICATIONS_LEASE_S)
    claimable = Q(status__in=[Status.PENDING, Status.FAILED]) | Q(status=Status.SENDING, lease_until__lt=now)
    updated = Notification.objects.filter(claimable, pk=notification_id, due_at__lte=now).update(
        status=Status.SENDING, attempts=F("attempts") + 1, lease_until=now + lease
    )
    return updated == 1


def unread_count(*, user_id: int) -> int:
    return Notification.objects.filter(recipient_id=user_id, channel=Channel.IN_APP, read_at__isnull=True).count()


def notification_deliver(*, notification_id: int) -> str:
    """Deliver one notification if it is due and nobody else holds it.
    Returns what happened: sent, retry, dead or skipped."""
    now = timezone.now()
    if not _claim(notification_id, now):
        return "skipped"
    notification = Notification.objects.select_related("recipient").get(pk=notification_id)
    try:
        message = notification_render(notification)
        if notification.channel == Channel.SMS:
            provider_id = send_sms(notification, message)
        elif notification.channel == Channel.EMAIL:
            provider_id = send_email(notification, message)
        else:
            provider_id = send_in_app(
                notification, message, unread=unread_count(user_id=notification.recipient_id or 0)
            )
    except (PermanentDeliveryError, TemplateDoesNotExist) as exc:
        _finish(notification, status=Status.DEAD, error=str(exc) or exc.__class__.__name__)
        return "dead"
    except Exception as exc:  # anything unexpected is worth another try
        error = str(exc) if isinstance(exc, TemporaryDeliveryError) else f"{exc.__class__.__name__}: {exc}"
        if notification.attempts >= settings.NOTIFICATIONS_MAX_ATTEMPTS:
            _finish(notification, status=Status.DEAD, error=f"gave up after {notification.attempts} attempts: {error}")
            return "dead"
        _finish(
            notification, status=Status.FAILED, error=error, due_at=timezone.now() + retry_delay(notification.attempts)
        )
        return "retry"
    _finish(notification, status=Status.SENT, provider_message_id=provider_id)
    return "sent"


def _finish(
    notification: Notification,
    *,
    status: str,
    error: str = "",
    due_at: datetime | None = None,
    provider_message_id: str = "",
) -> None:
    changes: dict[str, Any] = {"status": status, "lease_until": None, "enqueued_at": None}
    if status == Status.SENT:
        changes.update(sent_at=timezone.now(), provider_message_id=provider_message_id[:100], last_error="")
        # A sensitive message's details leave no copy behind once an SMS or
        # email carried them away; an in-app message is read from its row, in
        # the recipient's own inbox, so it keeps them.
        if notification.sensitive and notification.channel != Channel.IN_APP:
            changes["context"] = {}
    else:
        changes["last_error"] = error[:500]
    if due_at is not None:
        changes["due_at"] = due_at
    # Only the holder of the claim may finish it.
    Notification.objects.filter(pk=notification.pk, status=Status.SENDING).update(**changes)


def notifications_enqueue_due(*, limit: int = 2000) -> int:
    """Enqueue delivery of every row that is due and not already queued (or
    whose worker vanished: its lease ran out). Beat runs this."""
    from apps.notifications.tasks import notification_deliver_task

    now = timezone.now()
    stale = now - timedelta(seconds=settings.NOTIFICATIONS_REQUEUE_AFTER_S)
    waiting = Q(status__in=[Status.PENDING, Status.FAILED], due_at__lte=now) & (
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale)
    )
    abandoned = Q(status=Status.SENDING, lease_until__lt=now)
    ids = list(Notification.objects.filter(waiting | abandoned).order_by("due_at").values_list("pk", flat=True)[:limit])
    if not ids:
        return 0
    Notification.objects.filter(pk__in=ids).update(enqueued_at=now)
    for notification_id in ids:
        notification_deliver_task.delay(notification_id)
    return len(ids)


def notifications_withdraw(*, idempotency_key_prefix: str) -> int:
    """Withdraw messages that wait and are no longer true (the reminders of a
    cancelled appointment). Sent ones stay as they are."""
    return Notification.objects.filter(
        idempotency_key__startswith=idempotency_key_prefix, status__in=[Status.PENDING, Status.FAILED]
    ).update(status=Status.WITHDRAWN, enqueued_at=None)


def notification_retry(*, notification: Notification) -> bool:
    """Try a dead notification again (an admin's decision)."""
    now = timezone.now()
    updated = Notification.objects.filter(pk=notification.pk, status=Status.DEAD).update(
        status=Status.PENDING, due_at=now, enqueued_at=now, last_error="", attempts=0
    )
    if updated:
        notification.refresh_from_db()
        _enqueue_on_commit([notification])
    return bool(updated)


# --- Reading and preferences --------------------------------------------------


def notifications_mark_read(*, user: User, notification_ids: Iterable[int] | None = None) -> int:
    unread = Notification.objects.filter(recipient=user, channel=Channel.IN_APP, read_at__isnull=True)
    if notification_ids is not None:
        unread = unread.filter(pk__in=list(notification_ids))
    return unread.update(read_at=timezone.now())


def notification_preferences_update(
    *, user: User, channels_by_category: dict[str, set[str]], quiet_start: time, quiet_end: time
) -> None:
    with transaction.atomic():
        for category, channels in channels_by_category.items():
            NotificationPreference.objects.update_or_create(
                user=user,
                category=category,
                defaults={
                    "sms": Channel.SMS in channels,
                    "email": Channel.EMAIL in channels,
                    "in_app": Channel.IN_APP in channels,
                },
            )
        QuietHours.objects.update_or_create(user=user, defaults={"start": quiet_start, "end": quiet_end})


STOP_KEYWORDS = {"STOP", "UNSUBSCRIBE", "TD", "T", "退订", "取消"}
START_KEYWORDS = {"START", "UNSTOP", "SUBSCRIBE", "订阅"}


def sms_opt_out(*, phone: str, source: str, keyword: str = "") -> SmsOptOut:
    with transaction.atomic():
        active = SmsOptOut.objects.select_for_update().filter(phone=phone, opted_in_at__isnull=True).first()
        if active is not None:
            return active
        opt_out = SmsOptOut.objects.create(phone=phone, opted_out_at=timezone.now(), source=source, keyword=keyword)
        # Nothing still waiting goes out to that number.
        Notification.objects.filter(
            Q(recipient__phone=phone) | Q(destination=phone),
            channel=Channel.SMS,
            status__in=[Status.PENDING, Status.FAILED],
        ).update(status=Status.DEAD, last_error=OPTED_OUT)
    return opt_out


def sms_opt_in(*, phone: str) -> bool:
    return bool(SmsOptOut.objects.filter(phone=phone, opted_in_at__isnull=True).update(opted_in_at=timezone.now()))


def sms_inbound_handle(*, phone: str, text: str) -> str:
    """A text a phone sent us through the gateway. Returns what it did."""
    word = text.strip().upper()
    if word in STOP_KEYWORDS:
        sms_opt_out(phone=phone, source=SmsOptOutSource.KEYWORD, keyword=word[:40])
        return "opted_out"
    if word in START_KEYWORDS:
        sms_opt_in(phone=phone)
        return "opted_in"
    return "ignored"
