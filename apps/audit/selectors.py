"""Reading and checking the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from apps.audit.models import GENESIS_HASH, AuditEvent


@dataclass(frozen=True)
class ChainBreak:
    event_id: int
    problem: str


def audit_chain_verify(*, batch_size: int = 2000) -> Iterator[ChainBreak]:
    """Yield every place where the chain does not hold.

    A changed row fails its own hash; a deleted row makes the next row's
    ``prev_hash`` point at nothing we have seen.
    """
    expected_prev = GENESIS_HASH
    last_id = 0
    while True:
        batch = list(AuditEvent.objects.filter(id__gt=last_id).order_by("id")[:batch_size])
        if not batch:
            return
        for event in batch:
            if event.prev_hash != expected_prev:
                yield ChainBreak(event.id, "previous hash does not match: an earlier event was changed or deleted")
            if event.compute_hash() != event.hash:
                yield ChainBreak(event.id, "content does not match its hash: this event was changed")
            expected_prev = event.hash
            last_id = event.id
