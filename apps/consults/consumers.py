"""The consult sockets: the room's signaling socket,
``/ws/consults/<appointment id>/``, and the doctor's live waiting room,
``/ws/consults/waiting/``.

Thin entry points: the room socket admits the appointment's patient and
doctor inside the join window, relays WebRTC signaling between them, and
hands every other message to a service (which keeps it and tells the room);
the waiting socket passes the doctor's ``waiting.changed`` messages on to
the dashboard page. The protocol, for client authors, is in
docs/consult-protocol.md; its rules (close codes, field checks, the rate
limit) are in ``protocol.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zoneinfo
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from importlib import import_module
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.http import Http404
from django.urls import reverse
from django.utils import timezone, translation

from apps.accounts.middleware import SESSION_LOGIN_AT
from apps.accounts.models import User
from apps.consults import protocol
from apps.consults.broadcast import (
    REPLACE,
    doctor_waiting_group,
    room_group,
    session_digest,
    user_group,
    user_room_group,
)
from apps.consults.models import Consult, ConsultState, ParticipantRole
from apps.consults.payloads import iso
from apps.consults.protocol import ProtocolError, TokenBucket
from apps.consults.selectors import (
    consult_get_for_participant,
    consult_is_open,
    consult_join_window,
    consult_state_for,
    consults_waiting_for,
    participant_role,
    waiting_room_may_watch,
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
    other_user_id: int | None = None  # the other participant: signals go to them alone
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
    other = appointment.patient_id if role == ParticipantRole.DOCTOR else appointment.doctor_id
    return Admission(consult=consult_open_for(appointment=appointment), role=role, other_user_id=other)


def _chat_after(query_string: bytes) -> int | None:
    values = parse_qs(query_string.decode("latin-1")).get("chat_after", [])
    if len(values) == 1 and values[0].isdigit():
        return int(values[0])
    return None


class GuardedJsonConsumer(AsyncJsonWebsocketConsumer):
    """What both consult sockets do with a client's frames: the rate limit
    (flooding closes the socket), the size limit, JSON and type checks, and
    a refusal answered with a translated ``error`` message, never a crash.
    Subclasses set ``bucket`` and ``language`` on connect and act on a
    decoded message in ``handle``."""

    closing = False
    refused_in_a_row = 0
    bucket: TokenBucket
    language: str

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
            await self.handle(protocol.decode(text_data))
        except Refusal as refusal:
            await self._error(refusal)
        except Exception:
            logger.exception("%s: a message failed", self.describe())
            await self._error(ProtocolError("server_error"))

    async def handle(self, message: dict[str, Any]) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        """The socket, for the log (no health data)."""
        raise NotImplementedError

    async def _refuse_flood(self) -> None:
        self.refused_in_a_row += 1
        if self.refused_in_a_row == 1:
            await self._error(ProtocolError("rate_limited"))
        if self.refused_in_a_row >= settings.CONSULT_WS_RATE_BURST:
            await self._close(protocol.CLOSE_FLOODING)

    async def _error(self, refusal: Refusal) -> None:
        with translation.override(self.language):
            await self.send_json({"type": "error", "code": refusal.code, "message": refusal.message})

    async def _close(self, code: int) -> None:
        self.closing = True
        await self.close(code=code)


class ConsultConsumer(GuardedJsonConsumer):
    user: User
    consult: Consult
    role: str
    other_user_id: int
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
        assert admission.other_user_id is not None  # set with every consult
        self.other_user_id = admission.other_user_id
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

    async def handle(self, message: dict[str, Any]) -> None:
        await getattr(self, f"_on_{message['type']}")(message)

    def describe(self) -> str:
        return f"consult socket of appointment {self.consult.appointment_id}"

    async def _on_signal(self, message: dict[str, Any]) -> None:
        payload = protocol.signal_payload(message)
        if self.state != ConsultState.IN_PROGRESS:
            # The "started" message may have been lost on the layer: ask the database.
            self.state = await database_sync_to_async(
                lambda: Consult.objects.values_list("state", flat=True).get(pk=self.consult.pk)
            )()
            if self.state != ConsultState.IN_PROGRESS:
                raise ProtocolError("ended" if self.state == ConsultState.ENDED else "not_started")
        # To the other participant's sockets alone (one channel-layer message,
        # not one per socket in the room).
        await self.channel_layer.group_send(
            user_room_group(self.consult.appointment_id, self.other_user_id),
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
        mode, reason = protocol.media_mode(message), protocol.media_reason(message)
        await database_sync_to_async(consult_media_set)(consult=self.consult, by=self.user, mode=mode, reason=reason)

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

    async def _keep_presence(self) -> None:
        while True:
            await asyncio.sleep(settings.CONSULT_PRESENCE_REFRESH_S)
            if not await database_sync_to_async(consult_presence_touch)(
                consult=self.consult, user=self.user, channel_name=self.channel_name
            ):
                return


# --- The doctor's waiting room -----------------------------------------------------------

# The waiting socket's refusal of a signed-in user who is not a doctor (or a
# doctor without MFA). Not signed in is 4401, as on the room socket.
CLOSE_NOT_A_DOCTOR = 4403


def _zone(name: str) -> tzinfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.DEFAULT_USER_TIME_ZONE)


def waiting_entry(change: dict[str, Any], *, zone: tzinfo) -> dict[str, Any]:
    """One patient of the doctor's waiting room as the dashboard gets it, from
    a ``waiting.changed`` event or ``WaitingPatient.as_message()``: with the
    link to the room and the arrival time already in the doctor's zone, so
    that the page parses no zones."""
    appointment_id = int(change["appointment_id"])
    if not change.get("present"):
        return {"appointment_id": appointment_id, "present": False, "state": change.get("state")}
    since = datetime.fromisoformat(change["since"])
    return {
        "appointment_id": appointment_id,
        "present": True,
        "name": change.get("name") or "",
        "since": change["since"],
        "since_label": since.astimezone(zone).strftime("%H:%M"),
        "state": change.get("state"),
        "check": change.get("check"),
        "url": reverse("consults:room", args=[appointment_id]),
    }


def _watched_now(*, user_id: int, now: datetime) -> list[dict[str, Any]] | None:
    """The doctor's waiting room now, or None when they may no longer watch it
    (no longer a doctor, deactivated): read afresh, not from the socket's user."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None or not waiting_room_may_watch(user=user):
        return None
    return [patient.as_message() for patient in consults_waiting_for(doctor=user, now=now)]


def _session_alive(*, session_key: str, user_id: int) -> bool:
    """The socket's session still signs its user in: not signed out or ended
    from another device ("My signed-in devices", which sends no signal), not
    expired, and within STAFF_SESSION_MAX_S of signing in."""
    if not session_key:
        return False
    data = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key).load()
    if data.get(SESSION_KEY) != str(user_id):
        return False
    login_at = data.get(SESSION_LOGIN_AT)
    return login_at is None or time.time() - float(login_at) <= settings.STAFF_SESSION_MAX_S


def _fingerprint(entries: Any) -> dict[int, tuple[Any, ...]]:
    return {e["appointment_id"]: (e["name"], e["since"], e["state"], repr(e["check"])) for e in entries}


class WaitingRoomConsumer(GuardedJsonConsumer):
    """``/ws/consults/waiting/``: the signed-in doctor's patients in a consult
    room, live. On connect (and on ``sync``) the whole list; then each change
    as it happens; and every CONSULT_PRESENCE_REFRESH_S the list again if it
    differs from what the page was told (a change lost on the layer, a
    patient whose socket died without saying goodbye). Each refresh also
    checks that the doctor's session and role still hold."""

    user: User
    language: str
    zone: tzinfo
    session: str
    bucket: TokenBucket

    async def connect(self) -> None:
        self.closing = False
        self.refused_in_a_row = 0
        self.my_groups: list[str] = []
        self.shown: dict[int, dict[str, Any]] = {}
        self.refresher: asyncio.Task[None] | None = None
        user = self.scope.get("user")
        await self.accept()  # then close: a browser sees the code only on an accepted socket
        if user is None or not user.is_authenticated:
            await self._close(protocol.CLOSE_NOT_SIGNED_IN)
            return
        if not await database_sync_to_async(waiting_room_may_watch)(user=user):
            await self._close(CLOSE_NOT_A_DOCTOR)
            return
        self.user = user
        self.language = user.language
        self.zone = _zone(user.timezone)
        self.session_key = self.scope["session"].session_key or ""
        self.session = session_digest(self.session_key)
        self.bucket = TokenBucket(rate=settings.CONSULT_WS_RATE_PER_S, burst=settings.CONSULT_WS_RATE_BURST)
        # Join first, then read: a change in between comes after the list, and
        # applying it twice does no harm.
        for group in (doctor_waiting_group(user.pk), user_group(user.pk)):
            await self.channel_layer.group_add(group, self.channel_name)
            self.my_groups.append(group)
        patients = await database_sync_to_async(_watched_now)(user_id=user.pk, now=timezone.now())
        await self._send_list(patients or [])
        self.refresher = asyncio.create_task(self._keep_fresh())

    async def disconnect(self, code: int) -> None:
        if self.refresher is not None:
            self.refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.refresher
        for group in self.my_groups:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def handle(self, message: dict[str, Any]) -> None:
        if message["type"] != "sync":
            raise ProtocolError("unknown_type")
        patients = await database_sync_to_async(_watched_now)(user_id=self.user.pk, now=timezone.now())
        if patients is None:
            await self._close(CLOSE_NOT_A_DOCTOR)
            return
        await self._send_list(patients)

    def describe(self) -> str:
        return f"waiting-room socket of doctor {self.user.pk}"

    # --- From the layer --------------------------------------------------------------------

    async def waiting_changed(self, event: dict[str, Any]) -> None:
        if self.closing:
            return
        entry = waiting_entry(event, zone=self.zone)
        if entry["present"]:
            self.shown[entry["appointment_id"]] = entry
        else:
            self.shown.pop(entry["appointment_id"], None)
        await self.send_json({"type": "changed", **entry})

    async def consult_signed_out(self, event: dict[str, Any]) -> None:
        if self.closing or event["session"] not in (None, self.session):
            return
        await self._close(protocol.CLOSE_NOT_SIGNED_IN)

    # --- Helpers -----------------------------------------------------------------------------

    async def _send_list(self, patients: list[dict[str, Any]]) -> None:
        entries = [waiting_entry(patient, zone=self.zone) for patient in patients]
        self.shown = {entry["appointment_id"]: entry for entry in entries}
        await self.send_json({"type": "waiting", "patients": entries})

    async def _keep_fresh(self) -> None:
        while not self.closing:
            await asyncio.sleep(settings.CONSULT_PRESENCE_REFRESH_S)
            if not await database_sync_to_async(_session_alive)(session_key=self.session_key, user_id=self.user.pk):
                await self._close(protocol.CLOSE_NOT_SIGNED_IN)
                return
            for group in self.my_groups:  # channels-redis forgets members after a day: a dashboard stays open longer
                await self.channel_layer.group_add(group, self.channel_name)
            patients = await database_sync_to_async(_watched_now)(user_id=self.user.pk, now=timezone.now())
            if patients is None:
                await self._close(CLOSE_NOT_A_DOCTOR)
                return
            if _fingerprint(patients) != _fingerprint(self.shown.values()):
                await self._send_list(patients)
