"""Writing many audit events at once: a batch of readings writes an event
per reading (and per alert) in a constant number of queries.

The first event goes through ``audit_record``, which takes the chain's
lock (held to the end of the transaction, which this opens if the caller
has none) and links to the true previous event; the others follow it in
the chain and are inserted together. The result is the chain ``audit_record``
would have written one event at a time: ``audit_chain_verify`` holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from apps.audit.models import AuditAction, AuditEvent, AuditOutcome
from apps.audit.services import audit_record

if TYPE_CHECKING:
    from apps.accounts.models import User

INSERT_CHUNK = 1000  # events per INSERT


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
    they record; the actor's role, the request's IP and id and the time are
    those of the first event."""
    if not entries:
        return []
    with transaction.atomic(savepoint=False):
        first, *others = entries
        head = audit_record(
            action=first.action,
            actor=actor,
            object_type=first.object_type,
            object_id=first.object_id,
            patient=first.patient,
            clinic_id=first.clinic_id,
            outcome=outcome,
        )
        events = [head]
        created_at = timezone.now()
        for entry in others:
            event = AuditEvent(
                created_at=created_at,
                actor=head.actor,
                actor_label=head.actor_label,
                role=head.role,
                action=str(entry.action),
                object_type=entry.object_type,
                object_id=str(entry.object_id) if entry.object_id not in (None, "") else "",
                patient=entry.patient,
                clinic_id=entry.clinic_id,
                ip=head.ip,
                request_id=head.request_id,
                outcome=head.outcome,
                reason="",
                prev_hash=events[-1].hash,
            )
            event.hash = event.compute_hash()
            events.append(event)
        AuditEvent.objects.bulk_create(events[1:], batch_size=INSERT_CHUNK)
    return events
