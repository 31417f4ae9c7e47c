"""Reading consult rooms, with the access check every page and socket goes
through, and the ICE servers each participant gets."""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.http import Http404

from apps.accounts.middleware import user_has_mfa
from apps.accounts.models import User
from apps.clinics.selectors import UserRole, user_roles
from apps.consults.models import ChatMessage, Consult, ConsultPresence, ConsultState, ParticipantRole
from apps.consults.payloads import chat_payload, consult_payload, iso, presence_payload
from apps.scheduling.models import Appointment, AppointmentStatus, ConsultMode

# A re-sync carries at most this many chat messages; ``chat_more`` says to ask again.
SYNC_CHAT_LIMIT = 200


def consult_get_for_participant(*, user: User, appointment_id: int) -> Appointment:
    """The video appointment whose room ``user`` may enter: its patient's and
    its doctor's only. "Not found" for anyone else, for other kinds of
    appointment and for cancelled ones."""
    appointment = (
        Appointment.objects.filter(pk=appointment_id)
        .filter(Q(patient=user) | Q(doctor=user))
        .filter(mode=ConsultMode.VIDEO)
        .exclude(status=AppointmentStatus.CANCELLED)
        .select_related("patient", "doctor", "clinic")
        .first()
    )
    if appointment is None:
        raise Http404
    return appointment


def participant_role(*, appointment: Appointment, user: User) -> str | None:
    if user.pk == appointment.doctor_id:
        return ParticipantRole.DOCTOR
    if user.pk == appointment.patient_id:
        return ParticipantRole.PATIENT
    return None


def consult_join_window(appointment: Appointment) -> tuple[datetime, datetime]:
    """When the room opens and closes: from CONSULT_JOIN_BEFORE_MIN before the
    start until CONSULT_JOIN_AFTER_MIN after the end."""
    opens_at = appointment.starts_at - timedelta(minutes=settings.CONSULT_JOIN_BEFORE_MIN)
    closes_at = appointment.ends_at + timedelta(minutes=settings.CONSULT_JOIN_AFTER_MIN)
    return opens_at, closes_at


def consult_is_open(appointment: Appointment, *, now: datetime) -> bool:
    opens_at, closes_at = consult_join_window(appointment)
    return opens_at <= now < closes_at


def presence_fresh_since(now: datetime) -> datetime:
    """Presence rows refreshed before this moment belong to dead sockets."""
    return now - timedelta(seconds=3 * settings.CONSULT_PRESENCE_REFRESH_S)


def turn_password(secret: str, username: str) -> str:
    """The TURN REST password coturn's ``use-auth-secret`` expects."""
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), "sha1").digest()
    return base64.b64encode(digest).decode("ascii")


def ice_servers_for(*, user: User, consult: Consult, now: datetime) -> list[dict[str, Any]]:
    """The RTCIceServer list for ``user`` in ``consult``: STUN as configured;
    TURN with credentials that expire TURN_CREDENTIAL_MARGIN_S after the room
    closes (or after now, for a consult running late)."""
    servers: list[dict[str, Any]] = []
    if settings.ICE_STUN_URLS:
        servers.append({"urls": list(settings.ICE_STUN_URLS)})
    if settings.ICE_TURN_URLS and settings.TURN_SECRET:
        _opens_at, closes_at = consult_join_window(consult.appointment)
        expires_at = max(closes_at, now) + timedelta(seconds=settings.TURN_CREDENTIAL_MARGIN_S)
        username = f"{int(expires_at.timestamp())}:{user.pk}"
        servers.append(
            {
                "urls": list(settings.ICE_TURN_URLS),
                "username": username,
                "credential": turn_password(settings.TURN_SECRET, username),
            }
        )
    return servers


def consult_present(*, consult: Consult, now: datetime) -> list[ConsultPresence]:
    return list(
        ConsultPresence.objects.filter(consult=consult, seen_at__gte=presence_fresh_since(now))
        .select_related("user")
        .order_by("joined_at")
    )


def consult_chat_after(*, consult: Consult, after_id: int | None, limit: int = SYNC_CHAT_LIMIT) -> list[ChatMessage]:
    rows = ChatMessage.objects.filter(consult=consult).select_related("sender").order_by("id")
    if after_id is not None:
        rows = rows.filter(pk__gt=after_id)
    return list(rows[:limit])


def consult_state_for(
    *, consult: Consult, user: User, chat_after: int | None, now: datetime, message_type: str = "sync"
) -> dict[str, Any]:
    """Everything a client needs to (re)build the room: the ``welcome`` and
    ``sync`` messages of the protocol."""
    appointment = consult.appointment
    role = participant_role(appointment=appointment, user=user)
    opens_at, closes_at = consult_join_window(appointment)
    chat = consult_chat_after(consult=consult, after_id=chat_after, limit=SYNC_CHAT_LIMIT + 1)
    roles = {appointment.doctor_id: ParticipantRole.DOCTOR, appointment.patient_id: ParticipantRole.PATIENT}
    return {
        "type": message_type,
        "you": {"role": role, "name": user.full_name, "polite": role == ParticipantRole.PATIENT},
        "consult": {**consult_payload(consult), "opens_at": iso(opens_at), "closes_at": iso(closes_at)},
        "present": [presence_payload(p) for p in consult_present(consult=consult, now=now) if p.user_id != user.pk],
        "chat": [chat_payload(m, role=roles.get(m.sender_id, "")) for m in chat[:SYNC_CHAT_LIMIT]],
        "chat_more": len(chat) > SYNC_CHAT_LIMIT,
        "check": consult.check_result,
        "ice_servers": ice_servers_for(user=user, consult=consult, now=now),
        "ice_transport_policy": settings.CONSULT_ICE_TRANSPORT_POLICY,
        "media": {"video_max_kbps": settings.CONSULT_VIDEO_MAX_KBPS},
        "limits": {
            "max_message_bytes": settings.CONSULT_WS_MAX_MESSAGE_BYTES,
            "rate_per_s": settings.CONSULT_WS_RATE_PER_S,
            "burst": settings.CONSULT_WS_RATE_BURST,
            "chat_max_chars": ChatMessage._meta.get_field("body").max_length,
        },
    }


@dataclass(frozen=True)
class WaitingPatient:
    appointment_id: int
    patient_id: int
    name: str
    since: datetime
    state: str
    check: dict[str, Any] | None

    def as_message(self) -> dict[str, Any]:
        return {
            "appointment_id": self.appointment_id,
            "present": True,
            "name": self.name,
            "since": iso(self.since),
            "state": self.state,
            "check": self.check,
        }


def waiting_patient(presence: ConsultPresence) -> WaitingPatient:
    return WaitingPatient(
        appointment_id=presence.consult.appointment_id,
        patient_id=presence.user_id,
        name=presence.user.full_name,
        since=presence.joined_at,
        state=presence.consult.state,
        check=presence.consult.check_result,
    )


def consults_waiting_for(*, doctor: User, now: datetime) -> list[WaitingPatient]:
    """The doctor's patients who are in a consult room now (waiting, or in a
    consult that has not ended), longest waiting first: what a dashboard
    shows, and re-reads after its socket reconnects."""
    rows = (
        ConsultPresence.objects.filter(consult__appointment__doctor=doctor)
        .filter(role=ParticipantRole.PATIENT)
        .filter(seen_at__gte=presence_fresh_since(now))
        .filter(consult__appointment__status=AppointmentStatus.BOOKED)
        .exclude(consult__state=ConsultState.ENDED)
        .select_related("consult", "user")
        .order_by("joined_at")
    )
    return [waiting_patient(p) for p in rows]


def waiting_room_may_watch(*, user: User) -> bool:
    """May ``user`` watch their own waiting room live (the dashboard socket)?
    Signed-in doctors who have enrolled in MFA, as for their dashboard page."""
    if not user.is_authenticated:
        return False
    if UserRole.DOCTOR not in user_roles(user=user):
        return False
    return user_has_mfa(user)
