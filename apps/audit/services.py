"""Writing to the audit log. Every read and write of health data calls
``audit_record`` in the same transaction as the work it records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.utils import timezone

from apps.audit.models import GENESIS_HASH, AuditAction, AuditEvent, AuditOutcome
from apps.core.request_context import current_request_meta

if TYPE_CHECKING:
    from apps.accounts.models import User

# Any constant works: it only has to be the same for every writer.
_CHAIN_LOCK_KEY = 0x7E1E3ED


# The newest event's hash. Plain SQL: it runs in every audited request, and
# the ORM would build the same statement each time
# (``AuditEvent.objects.order_by("-id").values_list("hash").first()``).
_LAST_HASH_SQL = f"SELECT hash FROM {AuditEvent._meta.db_table} ORDER BY id DESC LIMIT 1"  # noqa: S608  # a constant
# On PostgreSQL the chain's lock first, in the same round trip: two
# statements, and in READ COMMITTED each takes its own snapshot, so the
# second, run once the lock is ours, sees every event committed before.
_LOCK_AND_LAST_HASH_SQL = f"SELECT pg_advisory_xact_lock(%s); {_LAST_HASH_SQL}"


def _lock_chain_and_read_last_hash() -> str | None:
    """Serialise writers so that each event links to the true previous one,
    and read the hash it links to. SQLite: writers already hold the
    database's single write lock."""
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute(_LAST_HASH_SQL)
        elif connection.settings_dict["OPTIONS"].get("server_side_binding"):  # one statement per execute
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
            cursor.execute(_LAST_HASH_SQL)
        else:
            cursor.execute(_LOCK_AND_LAST_HASH_SQL, [_CHAIN_LOCK_KEY])
            cursor.nextset()
        row = cursor.fetchone()
    return row[0] if row else None


def _actor_label(actor: User | None) -> str:
    if actor is None:
        return ""
    return f"user:{actor.pk}"


def _role_of(actor: User | None, role: str | None) -> str:
    if role is not None:
        return role
    from apps.clinics.selectors import user_role_label

    return user_role_label(user=actor) if actor is not None else ""


def audit_record(
    *,
    action: AuditAction | str,
    actor: User | None = None,
    object_type: str = "",
    object_id: Any = "",
    patient: User | None = None,
    clinic_id: int | None = None,
    outcome: AuditOutcome | str = AuditOutcome.SUCCESS,
    reason: str = "",
    role: str | None = None,
) -> AuditEvent:
    meta = current_request_meta()
    if actor is not None and not actor.is_authenticated:
        actor = None
    role = _role_of(actor, role)
    # Inside the caller's transaction no savepoint: an event that cannot be
    # written fails the work it records, whole.
    with transaction.atomic(savepoint=False):
        last = _lock_chain_and_read_last_hash()
        event = AuditEvent(
            created_at=timezone.now(),
            actor=actor,
            actor_label=_actor_label(actor),
            role=role,
            action=str(action),
            object_type=object_type,
            object_id=str(object_id) if object_id not in (None, "") else "",
            patient=patient,
            clinic_id=clinic_id,
            ip=meta.ip,
            request_id=meta.request_id,
            outcome=str(outcome),
            reason=reason[:500],
            prev_hash=last or GENESIS_HASH,
        )
        event.hash = event.compute_hash()
        event.save()
    return event


# --- Many events at once -------------------------------------------------------
# A batch of readings writes an event per reading (and per alert), a list page
# an event per patient shown, in a constant number of queries: the chain's
# lock and the last hash as ``audit_record`` reads them, then every event,
# each linked to the one before, in one INSERT (per ``INSERT_CHUNK``), so the
# chain is the one ``audit_record`` would have written one event at a time.

INSERT_CHUNK = 1000  # events per INSERT


def audit_access_denied(*, actor: User | None, object_type: str, object_id: Any) -> AuditEvent:
    """The event every access check records when it refuses (before it
    answers "not found" or its service's refusal)."""
    return audit_record(
        action=AuditAction.ACCESS_DENIED,
        actor=actor,
        object_type=object_type,
        object_id=object_id,
        outcome=AuditOutcome.FAILURE,
    )


@dataclass(frozen=True)
class AuditEntry:
    """One event of ``audit_record_many``: what was done to which object, of which patient."""

    action: AuditAction | str
    object_type: str
    object_id: Any = ""
    patient: User | None = None
    clinic_id: int | None = None


def audit_record_many(
    *, actor: User | None, entries: Sequence[AuditEntry], outcome: AuditOutcome | str = AuditOutcome.SUCCESS
) -> list[AuditEvent]:
    """Record ``entries`` (all by ``actor``, in this order), as
    ``audit_record`` would one by one, in the same transaction as the work
    they record, all with the actor's role, the request's IP and id and the
    same time. Four queries whatever the number (up to ``INSERT_CHUNK``):
    the transaction's start, the chain's lock with its last hash, one INSERT
    and the commit (inside the caller's transaction, two)."""
    if not entries:
        return []
    meta = current_request_meta()
    if actor is not None and not actor.is_authenticated:
        actor = None
    role = _role_of(actor, None)
    events: list[AuditEvent] = []
    with transaction.atomic(savepoint=False):
        prev_hash = _lock_chain_and_read_last_hash() or GENESIS_HASH
        created_at = timezone.now()
        for entry in entries:
            event = AuditEvent(
                created_at=created_at,
                actor=actor,
                actor_label=_actor_label(actor),
                role=role,
                action=str(entry.action),
                object_type=entry.object_type,
                object_id=str(entry.object_id) if entry.object_id not in (None, "") else "",
                patient=entry.patient,
                clinic_id=entry.clinic_id,
                ip=meta.ip,
                request_id=meta.request_id,
                outcome=str(outcome),
                reason="",
                prev_hash=prev_hash,
            )
            event.hash = prev_hash = event.compute_hash()
            events.append(event)
        AuditEvent.objects.bulk_create(events, batch_size=INSERT_CHUNK)
    return events
