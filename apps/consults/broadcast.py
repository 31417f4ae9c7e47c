"""Channel-layer groups of the consult rooms, and publishing to them after
the database work commits.

Groups:
- ``consult-<appointment id>``: every socket in the room.
- ``consult-<appointment id>-user-<user id>``: one user's socket(s) in one
  room (a newer socket replaces the older).
- ``consult-user-<user id>``: all of a user's consult sockets, room and
  waiting room (sign-out).
- ``doctor-<doctor id>-waiting``: the doctor's waiting-room sockets
  (``/ws/consults/waiting/``), told when a patient arrives, leaves, sends a
  check result, or a consult starts or ends.

Messages on the layer may be lost (Redis restarts): clients re-sync from the
database on reconnect, so publishing never fails the work it reports.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

# Group message types (the consumer's handler methods).
ROOM_MESSAGE = "consult.message"
ROOM_ENDED = "consult.ended"
REPLACE = "consult.replace"
SIGNED_OUT = "consult.signed_out"
WAITING_CHANGED = "waiting.changed"


def room_group(appointment_id: int) -> str:
    return f"consult-{appointment_id}"


def user_room_group(appointment_id: int, user_id: int) -> str:
    return f"consult-{appointment_id}-user-{user_id}"


def user_group(user_id: int) -> str:
    return f"consult-user-{user_id}"


def doctor_waiting_group(doctor_id: int) -> str:
    return f"doctor-{doctor_id}-waiting"


def session_digest(session_key: str) -> str:
    """Names a session on the layer without carrying its key."""
    return hashlib.sha256(session_key.encode("utf-8")).hexdigest()


def group_send_now(group: str, event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(group, event)


def publish(group: str, event: dict[str, Any]) -> None:
    """Send ``event`` to ``group`` once the current transaction commits (at
    once outside one). A failure to publish is logged, not raised."""
    transaction.on_commit(functools.partial(group_send_now, group, event), robust=True)


def publish_room(appointment_id: int, message: dict[str, Any], *, exclude_user_id: int | None = None) -> None:
    """``message`` (a protocol message) to everyone in the room but ``exclude_user_id``."""
    publish(room_group(appointment_id), {"type": ROOM_MESSAGE, "message": message, "exclude_user_id": exclude_user_id})


def publish_ended(appointment_id: int, message: dict[str, Any]) -> None:
    """The ``ended`` message to everyone in the room; their sockets close after it."""
    publish(room_group(appointment_id), {"type": ROOM_ENDED, "message": message})


def publish_waiting(doctor_id: int, change: dict[str, Any]) -> None:
    publish(doctor_waiting_group(doctor_id), {"type": WAITING_CHANGED, **change})
