"""The JSON shapes the consult protocol sends (docs/consult-protocol.md).
Times are ISO 8601 in UTC."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apps.consults.models import ChatMessage, Consult, ConsultPresence


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def consult_payload(consult: Consult) -> dict[str, Any]:
    return {
        "appointment_id": consult.appointment_id,
        "state": consult.state,
        "media_mode": consult.media_mode,
        "started_at": iso(consult.started_at),
        "ended_at": iso(consult.ended_at),
    }


def presence_payload(presence: ConsultPresence) -> dict[str, Any]:
    return {
        "role": presence.role,
        "name": presence.user.full_name,
        "since": iso(presence.joined_at),
        "quality": presence.quality,
    }


def chat_payload(message: ChatMessage, *, role: str) -> dict[str, Any]:
    return {
        "type": "chat",
        "id": message.pk,
        "from": role,
        "name": message.sender.full_name,
        "body": message.body,
        "sent_at": iso(message.sent_at),
    }
