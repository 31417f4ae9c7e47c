"""Sending SMS through a pluggable gateway backend.

``settings.SMS_BACKEND`` names the backend class. The console backend (the
embedded default) prints each message and keeps it in the outbox table that
the embedded outbox page shows. The HTTP backend speaks a generic JSON API;
a provider adapter is another ``SmsBackend`` subclass.
"""

from __future__ import annotations

import json
import logging
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

GSM7_CHARS = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€\f")


def sms_segments(body: str) -> int:
    """How many SMS segments ``body`` takes: 160/153 GSM-7 characters, or
    70/67 UCS-2 characters (any Chinese text) per segment."""
    if all(ch in GSM7_CHARS or ch in GSM7_EXTENDED for ch in body):
        length = sum(2 if ch in GSM7_EXTENDED else 1 for ch in body)
        single, multi = 160, 153
    else:
        length = len(body.encode("utf-16-le")) // 2
        single, multi = 70, 67
    if length <= single:
        return 1
    return -(-length // multi)


class SmsError(Exception):
    """A message could not be handed to the gateway."""


class SmsTemporaryError(SmsError):
    """Worth retrying later (timeout, 5xx, rate limit)."""


class SmsPermanentError(SmsError):
    """Retrying won't help (invalid number, rejected content)."""


@dataclass
class SmsMessage:
    to: str
    body: str
    sender: str = ""
    # Stable per logical message: a gateway that sees it twice (a retry after
    # a crash) delivers once.
    reference: str = ""
    sent_at: datetime = field(default_factory=timezone.now)


class SmsBackend:
    def send(self, message: SmsMessage) -> str:
        """Hand the message to the gateway; return the gateway's message id."""
        raise NotImplementedError


class ConsoleSmsBackend(SmsBackend):
    """Prints the message and keeps it for the embedded outbox page."""

    def send(self, message: SmsMessage) -> str:
        from apps.notifications.models import Channel, OutboxMessage

        kept = OutboxMessage.objects.create(channel=Channel.SMS, to=message.to, body=message.body)
        sys.stdout.write(f"\n----- SMS to {message.to} -----\n{message.body}\n-----\n")
        sys.stdout.flush()
        return f"console-{kept.pk}"


class HttpSmsBackend(SmsBackend):
    """A generic JSON-over-HTTPS gateway: POST {to, from, text} with a bearer key."""

    timeout_s = 10

    def send(self, message: SmsMessage) -> str:
        payload = json.dumps({"to": message.to, "from": message.sender, "text": message.body}).encode()
        request = urllib.request.Request(  # noqa: S310  # the URL comes from settings and is http(s)-checked
            str(settings.SMS_HTTP_URL),
            data=payload,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {settings.SMS_HTTP_API_KEY}",
                **({"Idempotency-Key": message.reference} if message.reference else {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
                body = response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 429 or exc.code >= 500:
                raise SmsTemporaryError(f"gateway answered {exc.code}") from exc
            raise SmsPermanentError(f"gateway refused the message ({exc.code})") from exc
        except (urllib.error.URLError, TimeoutError) as exc:
            raise SmsTemporaryError(f"gateway unreachable: {exc}") from exc
        try:
            return str(json.loads(body or b"{}").get("id", ""))
        except (ValueError, AttributeError):
            return ""


def sms_backend() -> SmsBackend:
    backend: SmsBackend = import_string(settings.SMS_BACKEND)()
    return backend


def sms_send(*, to: str, body: str, reference: str = "") -> str:
    """Hand one SMS to the gateway now. Everything else sends through
    ``notification_send``, which calls this from a Celery task."""
    message = SmsMessage(to=to, body=body, sender=settings.SMS_SENDER or "", reference=reference)
    message_id = sms_backend().send(message)
    logger.info("sms sent: %s segment(s), id %s", sms_segments(body), message_id)
    return message_id
