"""The consult room's signaling socket: ``/ws/consults/<appointment id>/``.

A thin entry point: it admits the appointment's patient and doctor inside
the join window, relays WebRTC signaling between them, and hands every
other message to a service (which keeps it and tells the room). The
protocol, for client authors, is in docs/consult-protocol.md; its rules
(close codes, field checks, the rate limit) are in ``protocol.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.http import Http404
from django.utils import timezone, translation

from apps.accounts.models import User
from apps.consults import protocol
from apps.consults.broadcast import (
    REPLACE,
    room_group,
    session_digest,
    user_group,
    user_room_group,
)
from apps.consults.models import Consult, ConsultState
from apps.consults.payloads import iso
from apps.consults.protocol import ProtocolError, TokenBucket
from apps.consults.selectors import (
    consult_get_for_participant,
    consult_is_open,
    consult_join_window,
    consult_state_for,
    participant_role,
)
from apps.consults.services import (
    chat_message_post,
    consult_check_record,
    consult_end,
    consult_join,
    consult_leave,
    consult_media_set,
    consult_open_for,
    consult_presence_touch,
    consult_quality_report,
    consult_start,
)
from apps.scheduling.models import AppointmentStatus
from apps.scheduling.services import Refusal

logger = logging.getLogger(__name__)


@dataclass
class Admission:
    consult: Consult | None = None
    role: str = ""
    close_code: int | None = None
    # Sent before closing, to participants only (never to outsiders).
    farewell: dict[str, Any] = field(default_factory=dict)


def _refusal(code: int, error: str = "", **extra: Any) -> Admission:
    farewell = {"type": "error", "code": error, "message": ProtocolError(error).message, **extra} if error else {}
    return Admission(close_code=code, farewell=farewell)


def admit(*, user: User, appointment_id: int, now: datetime) -> Admission:
    """May ``user`` enter the room now? Opens the consult when they may."""
    try:
        appointment = consult_get_for_participant(user=user, appointment_id=appointment_id)
    except Http404:
        return _refusal(protocol.CLOSE_NOT_FOUND)
    existing = Consult.objects.filter(appointment=appointment).first()
    if appointment.status != AppointmentStatus.BOOKED or (existing and existing.state == ConsultState.ENDED):
        return _refusal(protocol.CLOSE_ENDED, "ended")
    in_progress = existing is not None and existing.state == ConsultState.IN_PROGRESS
    if not in_progress and not consult_is_open(appointment, now=now):
        opens_at, closes_at = consult_join_window(appointment)
        error = "too_early" if now < opens_at else "too_late"
        return _refusal(protocol.CLOSE_OUTSIDE_WINDOW, error, opens_at=iso(opens_at), closes_at=iso(closes_at))
    role = participant_role(appointment=appointment, user=user) or ""
    return Admission(consult=consult_open_for(appointment=appointment), role=role)


def _chat_after(query_string: bytes) -> int | None:
    values = parse_qs(query_string.decode("latin-1")).get("chat_after", [])
    if len(values) == 1 and values[0].isdigit():
        return int(values[0])
    return None


class ConsultConsumer(AsyncJsonWebsocketConsumer):
    user: User
    consult: Consult
    role: str
    language: str
    state: str
    bucket: TokenBucket

    async def connect(self) -> None:
        self.joined = False
        self.closing = False
        self.refused_in_a_row = 0
        self.my_groups: list[str] = []
        self.refresher: asyncio.Task[None] | None = None
        user = self.scope.get("user")
        # Accept, then close: a browser sees the close code only on an
        # accepted socket (a refused handshake is always 1006 to the page).
        await self.accept()
        if user is None or not user.is_authenticated:
            await self._close(protocol.CLOSE_NOT_SIGNED_IN)
            return
        self.user = user
        self.language = user.language
        appointment_id = int(self.scope["url_route"]["kwargs"]["appointment_id"])
        with translation.override(self.language):
            admission = await database_sync_to_async(admit)(
                user=user, appointment_id=appointment_id, now=timezone.now()
            )
        if admission.consult is None:
            if admission.farewell:
                await self.send_json(admission.farewell)
            await self._close(admission.close_code or protocol.CLOSE_NOT_FOUND)
            return
        self.consult = admission.consult
        self.role = admission.role
        self.session = session_digest(self.scope["session"].session_key or "")
        self.bucket = TokenBucket(rate=settings.CONSULT_WS_RATE_PER_S, burst=settings.CONSULT_WS_RATE_BURST)
        for group in (room_group(appointment_id), user_room_group(appointment_id, user.pk), user_group(user.pk)):
            await self.channel_layer.group_add(group, self.channel_name)
            self.my_groups.append(group)
        await database_sync_to_async(consult_join)(consult=self.consult, user=user, channel_name=self.channel_name)
        self.joined = True
        # Only now, with the presence taken over: the older socket's goodbye removes nothing.
        await self.channel_layer.group_send(
            user_room_group(appointment_id, user.pk), {"type": REPLACE, "channel_name": self.channel_name}
        )
        await self._send_state("welcome", _chat_after(self.scope.get("query_string", b"")))
        self.refresher = asyncio.create_task(self._keep_presence())

    async def disconnect(self, code: int) -> None:
        if self.refresher is not None:
            self.refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.refresher
        if self.joined:
            self.joined = False
            await database_sync_to_async(consult_leave)(
                consult=self.consult, user=self.user, channel_name=self.channel_name
            )
        for group in self.my_groups:
            await self.channel_layer.group_discard(group, self.channel_name)

    # --- From the client ---------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        if self.closing:
            return
        if not self.bucket.take():
            await self._refuse_flood()
            return
        self.refused_in_a_row = 0
        try:
            if text_data is None:
                raise ProtocolError("bad_message")
            if len(text_data) * 4 > settings.CONSULT_WS_MAX_MESSAGE_BYTES and (
                len(text_data.encode("utf-8")) > settings.CONSULT_WS_MAX_MESSAGE_BYTES
            ):
                raise ProtocolError("too_big")
            message = protocol.decode(text_data)
            await getattr(self, f"_on_{message['type']}")(message)
        except Refusal as refusal:
            await self._error(refusal)
        except Exception:
            logger.exception("consult socket of appointment %s: a message failed", self.consult.appointment_id)
            await self._error(ProtocolError("server_error"))

    async def _refuse_flood(self) -> None:
        self.refused_in_a_row += 1
        if self.refused_in_a_row == 1:
            await self._error(ProtocolError("rate_limited"))
        if self.refused_in_a_row >= settings.CONSULT_WS_RATE_BURST:
            await self._close(protocol.CLOSE_FLOODING)

    async def _on_signal(self, message: dict[str, Any]) -> None:
        payload = protocol.signal_payload(message)
        if self.state != ConsultState.IN_PROGRESS:
            # The "started" message may have been lost on the layer: ask the database.
            self.state = await database_sync_to_async(
                lambda: Consult.objects.values_list("state", flat=True).get(pk=self.consult.pk)
            )()
            if self.state != ConsultState.IN_PROGRESS:
                raise ProtocolError("ended" if self.state == ConsultState.ENDED else "not_started")
        await self.channel_layer.group_send(
            room_group(self.consult.appointment_id),
            {
                "type": "consult.message",
                "message": {"type": "signal", "from": self.role, **payload},
                "exclude_user_id": self.user.pk,
            },
        )

    async def _on_chat(self, message: dict[str, Any]) -> None:
        body = protocol.chat_body(message)
        await database_sync_to_async(chat_message_post)(consult=self.consult, sender=self.user, body=body)

    async def _on_media(self, message: dict[str, Any]) -> None:
        mode = protocol.media_mode(message)
        await database_sync_to_async(consult_media_set)(consult=self.consult, by=self.user, mode=mode)

    async def _on_check(self, message: dict[str, Any]) -> None:
        await database_sync_to_async(consult_check_record)(
            consult=self.consult, by=self.user, result=message.get("result")
        )

    async def _on_quality(self, message: dict[str, Any]) -> None:
        await database_sync_to_async(consult_quality_report)(
            consult=self.consult, user=self.user, channel_name=self.channel_name, quality=message.get("quality")
        )

    async def _on_start(self, message: dict[str, Any]) -> None:
        await database_sync_to_async(consult_start)(consult=self.consult, by=self.user)

    async def _on_end(self, message: dict[str, Any]) -> None:
        await database_sync_to_async(consult_end)(consult=self.consult, by=self.user)

    async def _on_sync(self, message: dict[str, Any]) -> None:
        await self._send_state("sync", protocol.sync_chat_after(message))

    # --- From the room (channel layer) -------------------------------------------------

    async def consult_message(self, event: dict[str, Any]) -> None:
        if self.closing or event.get("exclude_user_id") == self.user.pk:
            return
        message = event["message"]
        if message["type"] == "started":
            self.state = ConsultState.IN_PROGRESS
        await self.send_json(message)

    async def consult_ended(self, event: dict[str, Any]) -> None:
        if self.closing:
            return
        self.state = ConsultState.ENDED
        await self.send_json(event["message"])
        await self._close(protocol.CLOSE_ENDED)

    async def consult_replace(self, event: dict[str, Any]) -> None:
        if self.closing or event["channel_name"] == self.channel_name:
            return
        await self.send_json({"type": "replaced"})
        await self._close(protocol.CLOSE_REPLACED)

    async def consult_signed_out(self, event: dict[str, Any]) -> None:
        if self.closing or event["session"] not in (None, self.session):
            return
        await self._close(protocol.CLOSE_NOT_SIGNED_IN)

    # --- Helpers -------------------------------------------------------------------------

    async def _send_state(self, message_type: str, chat_after: int | None) -> None:
        state = await database_sync_to_async(consult_state_for)(
            consult=self.consult, user=self.user, chat_after=chat_after, now=timezone.now(), message_type=message_type
        )
        self.state = state["consult"]["state"]
        await self.send_json(state)

    async def _error(self, refusal: Refusal) -> None:
        with translation.override(self.language):
            await self.send_json({"type": "error", "code": refusal.code, "message": refusal.message})

    async def _close(self, code: int) -> None:
        self.closing = True
        await self.close(code=code)

    async def _keep_presence(self) -> None:
        while True:
            await asyncio.sleep(settings.CONSULT_PRESENCE_REFRESH_S)
            if not await database_sync_to_async(consult_presence_touch)(
                consult=self.consult, user=self.user, channel_name=self.channel_name
            ):
                return
