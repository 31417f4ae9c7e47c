"""Rendering a notification's texts in its recipient's language and time zone.

Templates live in ``templates/notifications/messages/<template>/``:
``subject.txt`` (email subject and in-app title), ``sms.txt``, ``email.txt``,
an optional ``email.html``, and an optional ``inapp.txt`` (else ``sms.txt``).
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.utils import timezone, translation

from apps.notifications.models import Notification


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str | None


def _template(name: str, part: str) -> str:
    return f"notifications/messages/{name}/{part}"


def _prepared_context(context: dict[str, Any]) -> dict[str, Any]:
    """Context is stored as JSON: bring back the datetimes (keys ending in
    ``_at``) so templates show them in the active time zone."""
    prepared = dict(context)
    for key, value in context.items():
        if key.endswith("_at") and isinstance(value, str):
            try:
                prepared[key] = datetime.fromisoformat(value)
            except ValueError:
                continue
    prepared["site_url"] = settings.SITE_URL.rstrip("/")
    return prepared


def recipient_zone(notification: Notification) -> zoneinfo.ZoneInfo:
    recipient = notification.recipient
    name = recipient.timezone if recipient is not None else settings.DEFAULT_USER_TIME_ZONE
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.DEFAULT_USER_TIME_ZONE)


def notification_render(notification: Notification, *, language: str | None = None) -> RenderedMessage:
    """Render for the notification's channel. Raises TemplateDoesNotExist if
    the template set lacks a part the channel needs."""
    context = _prepared_context(notification.context)
    with translation.override(language or notification.language), timezone.override(recipient_zone(notification)):
        subject = " ".join(render_to_string(_template(notification.template, "subject.txt"), context).split())
        if notification.channel == "sms":
            return RenderedMessage(
                subject, render_to_string(_template(notification.template, "sms.txt"), context).strip(), None
            )
        if notification.channel == "in_app":
            try:
                body = render_to_string(_template(notification.template, "inapp.txt"), context)
            except TemplateDoesNotExist:
                body = render_to_string(_template(notification.template, "sms.txt"), context)
            return RenderedMessage(subject, body.strip(), None)
        text = render_to_string(_template(notification.template, "email.txt"), context).strip() + "\n"
        try:
            html: str | None = render_to_string(_template(notification.template, "email.html"), context)
        except TemplateDoesNotExist:
            html = None
        return RenderedMessage(subject, text, html)
