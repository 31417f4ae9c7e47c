"""Embedded mode's email backend: Django's console backend, plus a copy of
each message in the outbox table for the outbox page."""

from __future__ import annotations

from collections.abc import Sequence

from django.core.mail.backends.console import EmailBackend as ConsoleEmailBackend
from django.core.mail.message import EmailMessage


class ConsoleOutboxEmailBackend(ConsoleEmailBackend):
    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        from apps.notifications.models import Channel, OutboxMessage

        sent = super().send_messages(email_messages)
        for message in email_messages:
            OutboxMessage.objects.create(
                channel=Channel.EMAIL, to=", ".join(message.to), subject=str(message.subject), body=str(message.body)
            )
        return sent


__all__ = ["ConsoleOutboxEmailBackend"]
