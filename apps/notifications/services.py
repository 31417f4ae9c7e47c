"""Writing and delivering notifications.

``notification_send`` writes one row per channel in the caller's transaction
and enqueues delivery when it commits. ``notification_deliver`` (run by a
Celery task) claims a row with a conditional UPDATE, so that however often
the task runs, one run sends. Rows that wait (quiet hours, retries, a lost
task) are found by ``notifications_enqueue_due``, which beat runs.
"""

from __future__ import annotations

import logging
import random
import zoneinfo
from collections.abc import Iterable
from datetime import datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
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


def _sms_due_at(*, user: User | None, now: datetime, urgent: bool) -> datetime:
    if urgent or user is None:
        return now
    hours = QuietHours.objects.filter(user=user).values_list("start", "end").first()
    start, end = hours if hours else (DEFAULT_QUIET_START, DEFAULT_QUIET_END)
    return quiet_hours_end_after(moment=now, zone_name=user.timezone, start=start, end=end) or now


# --- Sending ----------------------------------------------------------------


def _enqueue_on_commit(notifications: Iterable[Notification]) -> None:
    ids = [n.pk for n in notifications if n.status == Status.PENDING and n.enqueued_at is not None]
    if not ids:
        return

    def enqueue() -> None:
        from apps.notifications.tasks import notification_deliver_task

        for notification_id in ids:
            try:
                notification_deliver_task.delay(notification_id)
            except Exception:  # the broker is down: beat's scan will find the rows
                logger.warning("could not enqueue notification %s; the periodic scan will", notification_id)

    transaction.on_commit(enqueue)


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

    Asking again with the same ``idempotency_key`` creates nothing new."""
    now = timezone.now()
    send_at = max(now, not_before) if not_before else now
    wanted = frozenset(channels) if channels is not None else preferred_channels(user=recipient, category=category)
    rows: list[Notification] = []
    for channel in sorted(wanted & reachable_channels(user=recipient)):
        row = Notification(
            recipient=recipient,
            clinic_id=clinic_id,
            category=category,
            channel=channel,
            template=template,
            context=context,
            attachments=attachments or [],
            language=recipient.language,
            urgent=urgent,
            sensitive=sensitive,
            idempotency_key=idempotency_key,
            due_at=_sms_due_at(user=recipient, now=send_at, urgent=urgent) if channel == Channel.SMS else send_at,
        )
        rows.append(row)
    return _store(rows, now=now)


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
    if not rows:
        return []
    for row in rows:
        phone = row.destination or (row.recipient.phone if row.recipient else "") or ""
        if row.channel == Channel.SMS and sms_is_opted_out(phone=phone):
            # Kept, not skipped: admins see why nothing reached the patient.
            row.status = Status.DEAD
            row.last_error = OPTED_OUT
        elif row.due_at <= now:
            row.enqueued_at = now
    key = rows[0].idempotency_key
    with transaction.atomic():
        existing = set(
            Notification.objects.filter(idempotency_key=key, channel__in=[r.channel for r in rows]).values_list(
                "channel", flat=True
            )
        )
        new_rows = [r for r in rows if r.channel not in existing]
        Notification.objects.bulk_create(new_rows, ignore_conflicts=True)
        stored = list(Notification.objects.filter(idempotency_key=key, channel__in=[r.channel for r in rows]))
    by_channel = {r.channel: r for r in new_rows}
    fresh = [r for r in stored if r.channel in by_channel]
    _enqueue_on_commit(fresh)
    return stored


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
        if notification.sensitive:
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
