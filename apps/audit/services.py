"""Writing to the audit log. Every read and write of health data calls
``audit_record`` in the same transaction as the work it records."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.utils import timezone

from apps.audit.models import GENESIS_HASH, AuditAction, AuditEvent, AuditOutcome
from apps.core.request_context import current_request_meta

if TYPE_CHECKING:
    from apps.accounts.models import User

# Any constant works: it only has to be the same for every writer.
_CHAIN_LOCK_KEY = 0x7E1E3ED


def _lock_chain() -> None:
    """Serialise writers so that each event links to the true previous one."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
    # SQLite: writers already hold the database's single write lock.


def _actor_label(actor: User | None) -> str:
    if actor is None:
        return ""
    return f"user:{actor.pk}"


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
    if role is None:
        from apps.clinics.selectors import user_role_label

        role = user_role_label(user=actor) if actor is not None else ""
    # Inside the caller's transaction no savepoint: an event that cannot be
    # written fails the work it records, whole.
    with transaction.atomic(savepoint=False):
        _lock_chain()
        last = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
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
