"""Reads of notifications, each limited to what the caller may see."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from apps.accounts.models import User
from apps.clinics.models import Clinic
from apps.notifications.models import Channel, Notification, Status
from apps.notifications.rendering import notification_render


def in_app_notifications_for(*, user: User) -> QuerySet[Notification]:
    return Notification.objects.filter(recipient=user, channel=Channel.IN_APP, status=Status.SENT)


def latest_in_app_id(*, user_id: int) -> int:
    latest = (
        Notification.objects.filter(recipient_id=user_id, channel=Channel.IN_APP, status=Status.SENT)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )
    return latest or 0


def in_app_notifications_after(*, user_id: int, after_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """Delivered in-app notifications newer than ``after_id``, as live events."""
    rows = list(
        Notification.objects.filter(recipient_id=user_id, channel=Channel.IN_APP, status=Status.SENT, id__gt=after_id)
        .select_related("recipient")
        .order_by("id")[:limit]
    )
    if not rows:
        return []
    unread = Notification.objects.filter(recipient_id=user_id, channel=Channel.IN_APP, read_at__isnull=True).count()
    events = []
    for row in rows:
        message = notification_render(row)
        events.append(
            {
                "id": row.pk,
                "title": message.subject,
                "body": message.text,
                "url": str(row.context.get("link", "")),
                "urgent": row.urgent,
                "unread": unread,
            }
        )
    return events


def clinic_notifications(*, clinic: Clinic, status: str | None = None) -> QuerySet[Notification]:
    """A clinic's notifications for its admins' delivery view."""
    rows = Notification.objects.filter(clinic=clinic).select_related("recipient")
    if status:
        rows = rows.filter(status=status)
    return rows


def clinic_notification_get(*, clinic: Clinic, notification_id: int) -> Notification:
    notification = Notification.objects.filter(clinic=clinic, pk=notification_id).first()
    if notification is None:
        raise Http404
    return notification
