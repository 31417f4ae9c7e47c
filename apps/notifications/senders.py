"""Handing a rendered notification to its channel: SMS gateway, SMTP, or
the user's open pages. Each raises TemporaryDeliveryError or
PermanentDeliveryError; anything else counts as temporary."""

from __future__ import annotations

import base64
import smtplib

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.mail import EmailMultiAlternatives

from apps.notifications.models import Channel, Notification
from apps.notifications.rendering import RenderedMessage
from apps.notifications.sms import SmsPermanentError, SmsTemporaryError, sms_send


class TemporaryDeliveryError(Exception):
    pass


class PermanentDeliveryError(Exception):
    pass


def user_group_name(user_id: int) -> str:
    return f"notifications.user.{user_id}"


def delivery_reference(notification: Notification) -> str:
    return f"telemed-notification-{notification.pk}"


def notification_address(notification: Notification) -> str:
    if notification.destination:
        return notification.destination
    recipient = notification.recipient
    if notification.channel == Channel.SMS:
        return (recipient.phone if recipient else "") or ""
    if notification.channel == Channel.EMAIL:
        return (recipient.email if recipient else "") or ""
    return ""


def send_sms(notification: Notification, message: RenderedMessage) -> str:
    to = notification_address(notification)
    if not to:
        raise PermanentDeliveryError("the recipient has no phone number")
    try:
        return sms_send(to=to, body=message.text, reference=delivery_reference(notification))
    except SmsPermanentError as exc:
        raise PermanentDeliveryError(str(exc)) from exc
    except SmsTemporaryError as exc:
        raise TemporaryDeliveryError(str(exc)) from exc


def send_email(notification: Notification, message: RenderedMessage) -> str:
    to = notification_address(notification)
    if not to:
        raise PermanentDeliveryError("the recipient has no email address")
    email = EmailMultiAlternatives(
        subject=message.subject,
        body=message.text,
        to=[to],
        headers={"Message-ID": f"<{delivery_reference(notification)}@telemed>"},
    )
    if message.html:
        email.attach_alternative(message.html, "text/html")
    for attachment in notification.attachments:
        content: str | bytes = attachment["content"]
        if attachment.get("base64"):
            content = base64.b64decode(str(content))
        email.attach(attachment["filename"], content, attachment.get("mimetype", "application/octet-stream"))
    try:
        email.send()
    except smtplib.SMTPRecipientsRefused as exc:
        raise PermanentDeliveryError("the mail server refused the address") from exc
    except smtplib.SMTPResponseException as exc:
        if 500 <= exc.smtp_code < 600:
            raise PermanentDeliveryError(f"the mail server refused the message ({exc.smtp_code})") from exc
        raise TemporaryDeliveryError(f"the mail server answered {exc.smtp_code}") from exc
    except (smtplib.SMTPException, OSError, TimeoutError) as exc:
        raise TemporaryDeliveryError(f"the mail server is unreachable: {exc.__class__.__name__}") from exc
    return f"<{delivery_reference(notification)}@telemed>"


def send_in_app(notification: Notification, message: RenderedMessage, *, unread: int) -> str:
    """In-app notifications are stored already: 'sending' one pushes it to
    the recipient's open pages. Nobody online is not an error."""
    if notification.recipient_id is None:
        raise PermanentDeliveryError("in-app notifications need an account")
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(
            user_group_name(notification.recipient_id),
            {
                "type": "notification.created",
                "id": notification.pk,
                "title": message.subject,
                "body": message.text,
                "url": str(notification.context.get("link", "")),
                "urgent": notification.urgent,
                "unread": unread,
            },
        )
    return ""
