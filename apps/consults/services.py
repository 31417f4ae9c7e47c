"""Consult room writes: opening, joining and leaving, starting and ending,
chat, pre-call check results and media mode.

Each change is recorded as a ``ConsultEvent`` and in the audit log (never
with chat text or other health data), and published to the room after it
commits (``apps.consults.broadcast``). Callers pass a participant the
selectors admitted; the role checks here are the second line.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import User
from apps.audit.models import AuditAction
from apps.audit.services import audit_record
from apps.consults.broadcast import publish_ended, publish_room, publish_waiting
from apps.consults.models import (
    CHAT_MAX_CHARS,
    ChatMessage,
    Consult,
    ConsultEvent,
    ConsultEventKind,
    ConsultPresence,
    ConsultState,
    MediaMode,
    ParticipantRole,
)
from apps.consults.notices import notify_doctor_ready, withdraw_doctor_ready
from apps.consults.payloads import chat_payload, iso, presence_payload
from apps.consults.selectors import participant_role, presence_fresh_since, waiting_patient
from apps.scheduling.models import Appointment, AppointmentStatus
from apps.scheduling.services import AppointmentChangeError, Refusal, appointment_mark


class ConsultError(Refusal):
    MESSAGES: dict[str, Promise] = {
        "not_participant": _("You are not taking part in this consult."),
        "doctor_only": _("Only the doctor can do this."),
        "patient_only": _("Only the patient can do this."),
        "already_started": _("The consult has already started."),
        "not_started": _("The consult has not started yet."),
        "ended": _("The consult has ended."),
        "not_booked": _("This appointment is no longer booked."),
        "chat_empty": _("Write a message first."),
        "chat_too_long": _("A message can be at most %(max)d characters long."),
        "bad_media": _("Choose video, audio only or chat only."),
        "bad_check": _("The pre-call check result is not valid."),
        "bad_quality": _("The connection quality report is not valid."),
    }

    @property
    def message(self) -> str:
        text = str(self.MESSAGES[self.code])
        return text % {"max": CHAT_MAX_CHARS} if self.code == "chat_too_long" else text


def _role(consult: Consult, user: User) -> str:
    role = participant_role(appointment=consult.appointment, user=user)
    if role is None:
        raise ConsultError("not_participant")
    return role


def _audit(consult: Consult, *, action: AuditAction, actor: User | None, reason: str) -> None:
    appointment = consult.appointment
    audit_record(
        action=action,
        actor=actor,
        object_type="consult",
        object_id=appointment.pk,
        patient=appointment.patient,
        clinic_id=appointment.clinic_id,
        reason=reason,
    )


def _lock(consult: Consult) -> Consult:
    return Consult.objects.select_for_update().select_related("appointment__patient").get(pk=consult.pk)


def consult_event_record(
    *, consult: Consult, kind: str, actor: User | None, data: dict[str, Any] | None = None, now: datetime | None = None
) -> ConsultEvent:
    return ConsultEvent.objects.create(
        consult=consult, kind=kind, actor=actor, data=data or {}, at=now or timezone.now()
    )


def consult_open_for(*, appointment: Appointment) -> Consult:
    """The appointment's consult room, made the first time it is needed."""
    with transaction.atomic():
        consult, created = Consult.objects.get_or_create(appointment=appointment)
        if created:
            consult_event_record(consult=consult, kind=ConsultEventKind.OPENED, actor=None)
            _audit(consult, action=AuditAction.CREATE, actor=None, reason="consult room opened")
    consult.appointment = appointment
    return consult


def _publish_waiting(consult: Consult, presence: ConsultPresence | None) -> None:
    appointment = consult.appointment
    if presence is None:
        change: dict[str, Any] = {"appointment_id": appointment.pk, "present": False, "state": consult.state}
    else:
        change = waiting_patient(presence).as_message()
    publish_waiting(appointment.doctor_id, change)


def _patient_presence(consult: Consult, now: datetime) -> ConsultPresence | None:
    return (
        ConsultPresence.objects.filter(consult=consult, role=ParticipantRole.PATIENT)
        .filter(seen_at__gte=presence_fresh_since(now))
        .select_related("consult", "user")
        .first()
    )


def consult_join(*, consult: Consult, user: User, channel_name: str, now: datetime | None = None) -> ConsultPresence:
    """``user`` is in the room through the socket ``channel_name`` (a newer
    socket of the same user takes the place of the older one)."""
    now = now or timezone.now()
    role = _role(consult, user)
    with transaction.atomic():
        previous = ConsultPresence.objects.select_for_update().filter(consult=consult, user=user).first()
        back_soon = previous is not None and previous.seen_at >= presence_fresh_since(now)
        presence, _created = ConsultPresence.objects.update_or_create(
            consult=consult,
            user=user,
            defaults={
                "role": role,
                "channel_name": channel_name,
                "joined_at": previous.joined_at if previous is not None and back_soon else now,
                "seen_at": now,
                "quality": None,
            },
        )
        presence.user = user
        presence.consult = consult
        consult_event_record(consult=consult, kind=ConsultEventKind.JOINED, actor=user, data={"role": role}, now=now)
        _audit(consult, action=AuditAction.VIEW, actor=user, reason="joined the consult room")
        publish_room(
            consult.appointment_id,
            {"type": "peer", "event": "joined", **presence_payload(presence)},
            exclude_user_id=user.pk,
        )
        if role == ParticipantRole.PATIENT:
            _publish_waiting(consult, presence)
    return presence


def consult_leave(*, consult: Consult, user: User, channel_name: str, now: datetime | None = None) -> bool:
    """The socket ``channel_name`` closed. False when a newer socket of the
    user had already taken its place (nobody left)."""
    now = now or timezone.now()
    with transaction.atomic():
        presence = (
            ConsultPresence.objects.filter(consult=consult, user=user, channel_name=channel_name)
            .select_related("user")
            .first()
        )
        if presence is None:
            return False
        presence.delete()
        consult_event_record(
            consult=consult, kind=ConsultEventKind.LEFT, actor=user, data={"role": presence.role}, now=now
        )
        publish_room(
            consult.appointment_id,
            {"type": "peer", "event": "left", **presence_payload(presence)},
            exclude_user_id=user.pk,
        )
        if presence.role == ParticipantRole.PATIENT:
            _publish_waiting(consult, None)
    return True


def consult_presence_touch(*, consult: Consult, user: User, channel_name: str, now: datetime | None = None) -> bool:
    """The socket is still open. False when it no longer holds the presence."""
    now = now or timezone.now()
    return bool(
        ConsultPresence.objects.filter(consult=consult, user=user, channel_name=channel_name).update(seen_at=now)
    )


def consult_start(*, consult: Consult, by: User, now: datetime | None = None) -> Consult:
    """The doctor starts the consult: the patient is told (in the room, and
    by a "doctor is ready" notice), and media may flow."""
    now = now or timezone.now()
    if _role(consult, by) != ParticipantRole.DOCTOR:
        raise ConsultError("doctor_only")
    with transaction.atomic():
        locked = _lock(consult)
        if locked.state == ConsultState.ENDED:
            raise ConsultError("ended")
        if locked.state == ConsultState.IN_PROGRESS:
            raise ConsultError("already_started")
        if locked.appointment.status != AppointmentStatus.BOOKED:
            raise ConsultError("not_booked")
        locked.state = ConsultState.IN_PROGRESS
        locked.started_at = now
        locked.save(update_fields=["state", "started_at"])
        consult_event_record(consult=locked, kind=ConsultEventKind.STARTED, actor=by, now=now)
        _audit(locked, action=AuditAction.UPDATE, actor=by, reason="consult started")
        publish_room(locked.appointment_id, {"type": "started", "started_at": iso(now), "by": ParticipantRole.DOCTOR})
        presence = _patient_presence(locked, now)
        _publish_waiting(locked, presence)
        # "The doctor is ready": in the app, and by SMS if the patient is not
        # in the room; delivered once this commits (a refused start sends nothing).
        notify_doctor_ready(consult=locked, patient_present=presence is not None)
    return locked


def consult_end(*, consult: Consult, by: User, now: datetime | None = None) -> Consult:
    """The doctor ends the consult; its appointment becomes completed with
    the consult's duration."""
    now = now or timezone.now()
    if _role(consult, by) != ParticipantRole.DOCTOR:
        raise ConsultError("doctor_only")
    with transaction.atomic():
        locked = _lock(consult)
        if locked.state == ConsultState.ENDED:
            raise ConsultError("ended")
        if locked.state != ConsultState.IN_PROGRESS or locked.started_at is None:
            raise ConsultError("not_started")
        duration_s = max(0, math.floor((now - locked.started_at).total_seconds()))
        try:
            appointment_mark(
                appointment=locked.appointment,
                status=AppointmentStatus.COMPLETED,
                by=by,
                now=now,
                duration_s=duration_s,
            )
        except AppointmentChangeError as exc:
            raise ConsultError("not_booked") from exc
        locked.state = ConsultState.ENDED
        locked.ended_at = now
        locked.save(update_fields=["state", "ended_at"])
        consult_event_record(
            consult=locked, kind=ConsultEventKind.ENDED, actor=by, data={"duration_s": duration_s}, now=now
        )
        _audit(locked, action=AuditAction.UPDATE, actor=by, reason="consult ended")
        withdraw_doctor_ready(consult=locked)
        publish_ended(
            locked.appointment_id,
            {"type": "ended", "ended_at": iso(now), "duration_s": duration_s, "by": ParticipantRole.DOCTOR},
        )
        publish_waiting(
            locked.appointment.doctor_id,
            {"appointment_id": locked.appointment_id, "present": False, "state": locked.state},
        )
    return locked


def chat_message_post(*, consult: Consult, sender: User, body: str, now: datetime | None = None) -> ChatMessage:
    """Keep a chat message and send it to everyone in the room, the sender
    included (their copy, with its id and time, is the acknowledgement)."""
    now = now or timezone.now()
    role = _role(consult, sender)
    body = body.strip()
    if not body:
        raise ConsultError("chat_empty")
    if len(body) > CHAT_MAX_CHARS:
        raise ConsultError("chat_too_long")
    with transaction.atomic():
        if _lock(consult).state == ConsultState.ENDED:
            raise ConsultError("ended")
        message = ChatMessage.objects.create(consult=consult, sender=sender, body=body, sent_at=now)
        _audit(consult, action=AuditAction.CREATE, actor=sender, reason=f"chat message {message.pk}")
        publish_room(consult.appointment_id, chat_payload(message, role=role))
    return message


# Measurements a client reports, with their largest plausible value.
_MEASUREMENT_MAXIMA = {"rtt_ms": 60_000, "loss_pct": 100, "bitrate_kbps": 1_000_000}


def _measurements(data: dict[str, Any], code: str) -> dict[str, float | None]:
    """rtt_ms, loss_pct and bitrate_kbps from ``data``: each a finite number in
    range or null (not measured); anything else raises ConsultError(code)."""
    clean: dict[str, float | None] = {}
    for name, maximum in _MEASUREMENT_MAXIMA.items():
        value = data.get(name)
        if value is None:
            clean[name] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConsultError(code)
        if not math.isfinite(value) or not 0 <= value <= maximum:
            raise ConsultError(code)
        clean[name] = round(float(value), 1)
    return clean


def check_result_clean(result: object) -> dict[str, Any]:
    """A pre-call check result as stored, or ConsultError("bad_check"). The
    measurements may be null (not measured); the recommendation may not."""
    if not isinstance(result, dict) or not set(result) <= {*_MEASUREMENT_MAXIMA, "relay_ok", "recommendation"}:
        raise ConsultError("bad_check")
    clean: dict[str, Any] = _measurements(result, "bad_check")
    relay_ok = result.get("relay_ok")
    if relay_ok is not None and not isinstance(relay_ok, bool):
        raise ConsultError("bad_check")
    clean["relay_ok"] = relay_ok
    if result.get("recommendation") not in MediaMode.values:
        raise ConsultError("bad_check")
    clean["recommendation"] = result["recommendation"]
    return clean


def consult_check_record(*, consult: Consult, by: User, result: object, now: datetime | None = None) -> dict[str, Any]:
    """Keep the patient's latest pre-call check; the doctor is told."""
    now = now or timezone.now()
    if _role(consult, by) != ParticipantRole.PATIENT:
        raise ConsultError("patient_only")
    clean = {**check_result_clean(result), "checked_at": iso(now)}
    with transaction.atomic():
        locked = _lock(consult)
        if locked.state == ConsultState.ENDED:
            raise ConsultError("ended")
        locked.check_result = clean
        locked.save(update_fields=["check_result"])
        consult.check_result = clean
        consult_event_record(consult=locked, kind=ConsultEventKind.CHECK_RESULT, actor=by, data=clean, now=now)
        _audit(locked, action=AuditAction.UPDATE, actor=by, reason="pre-call check result")
        publish_room(locked.appointment_id, {"type": "check", "result": clean})
        _publish_waiting(locked, _patient_presence(locked, now))
    return clean


def consult_media_set(
    *, consult: Consult, by: User, mode: str, reason: str = "manual", now: datetime | None = None
) -> Consult:
    """Switch the consult to video, audio only or chat only (either side may);
    the other side is told, with the reason (``manual``, or ``weak_link`` when
    the client switched by itself). Choosing the current mode changes nothing."""
    now = now or timezone.now()
    role = _role(consult, by)
    if mode not in MediaMode.values:
        raise ConsultError("bad_media")
    with transaction.atomic():
        locked = _lock(consult)
        if locked.state == ConsultState.ENDED:
            raise ConsultError("ended")
        if locked.media_mode == mode:
            return locked
        locked.media_mode = mode
        locked.save(update_fields=["media_mode"])
        consult.media_mode = mode
        consult_event_record(
            consult=locked,
            kind=ConsultEventKind.MEDIA_CHANGED,
            actor=by,
            data={"mode": mode, "role": role, "reason": reason},
            now=now,
        )
        _audit(locked, action=AuditAction.UPDATE, actor=by, reason=f"media mode {mode} ({reason})")
        publish_room(
            locked.appointment_id, {"type": "media", "mode": mode, "by": role, "reason": reason}, exclude_user_id=by.pk
        )
    return locked


def consult_quality_report(*, consult: Consult, user: User, channel_name: str, quality: object) -> dict[str, Any]:
    """A participant's latest measured connection quality (from getStats),
    kept on their presence and passed to the others in the room. Telemetry,
    not a record: no event, no audit."""
    if not isinstance(quality, dict) or not set(quality) <= set(_MEASUREMENT_MAXIMA):
        raise ConsultError("bad_quality")
    clean = _measurements(quality, "bad_quality")
    role = _role(consult, user)
    with transaction.atomic():
        ConsultPresence.objects.filter(consult=consult, user=user, channel_name=channel_name).update(quality=clean)
        publish_room(
            consult.appointment_id,
            {"type": "peer", "event": "quality", "role": role, "quality": clean},
            exclude_user_id=user.pk,
        )
    return clean
