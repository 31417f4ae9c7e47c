"""Reading and checking the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db.models import Q, QuerySet

from apps.audit.models import GENESIS_HASH, AuditEvent, AuditVerification

if TYPE_CHECKING:
    from apps.clinics.models import Clinic


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


# --- A clinic's audit log, for its admins ------------------------------------------
# Which events belong to a clinic (docs/security.md, "Who reads the audit log"):
#   - events tagged with the clinic (its schedules, appointments, staff and
#     notifications);
#   - untagged events (reads and writes of health data, sign-ins) by the
#     clinic's staff, or about the clinic's patients;
#   - break-glass openings of a chart of one of the clinic's patients,
#     wherever they are tagged.
# The clinic's patients are those with an appointment (not cancelled) there;
# its staff are its doctors and admins, past and present.

BREAK_GLASS_OBJECT_TYPES = ("break_glass", "break_glass_access", "breakglassaccess")
AUDIT_PAGE_SIZE = 50


@dataclass(frozen=True)
class AuditFilter:
    """What a clinic admin narrows their clinic's audit log to; empty means any."""

    patient_query: str = ""
    actor_query: str = ""
    action: str = ""
    since: datetime | None = None  # from this instant (inclusive)
    until: datetime | None = None  # to this instant (exclusive)


@dataclass(frozen=True)
class AuditPage:
    """One page of events, newest first, and the keys of its neighbours."""

    events: list[AuditEvent]
    newer_than: int | None  # pass as ``after`` for the newer page, if any
    older_than: int | None  # pass as ``before`` for the older page, if any


def _clinic_patient_ids(*, clinic: Clinic) -> QuerySet[Any]:
    from apps.scheduling.models import Appointment, AppointmentStatus

    return Appointment.objects.filter(clinic=clinic).exclude(status=AppointmentStatus.CANCELLED).values("patient_id")


def _clinic_staff_ids(*, clinic: Clinic) -> QuerySet[Any]:
    from apps.clinics.models import Membership

    return Membership.objects.filter(clinic=clinic).values("user_id")


def _people_matching(query: str) -> QuerySet[Any]:
    """Users whose id, name or phone number (4 digits or more) matches ``query``."""
    from apps.accounts.models import User

    query = query.strip()
    condition = Q(full_name__icontains=query) | Q(email__iexact=query)
    digits = "".join(ch for ch in query if ch.isdigit())
    if query.isdigit() and len(query) <= 18:
        condition |= Q(pk=int(query))
    if len(digits) >= 4:
        condition |= Q(phone__contains=digits)
    return User.objects.filter(condition).values("pk")


def audit_events_of_clinic(*, clinic: Clinic, where: AuditFilter | None = None) -> QuerySet[AuditEvent]:
    """Every event a clinic's admins may read, narrowed by ``where``. The
    caller has checked that the user administers ``clinic``."""
    where = where or AuditFilter()
    patients = _clinic_patient_ids(clinic=clinic)
    staff = _clinic_staff_ids(clinic=clinic)
    events = AuditEvent.objects.filter(
        Q(clinic_id=clinic.pk)
        | Q(clinic_id__isnull=True, actor_id__in=staff)
        | Q(clinic_id__isnull=True, patient_id__in=patients)
        | Q(object_type__in=BREAK_GLASS_OBJECT_TYPES, patient_id__in=patients)
    )
    if where.patient_query:
        events = events.filter(patient_id__in=_people_matching(where.patient_query))
    if where.actor_query:
        events = events.filter(actor_id__in=_people_matching(where.actor_query))
    if where.action:
        events = events.filter(action=where.action)
    if where.since is not None:
        events = events.filter(created_at__gte=where.since)
    if where.until is not None:
        events = events.filter(created_at__lt=where.until)
    return events


def audit_page_of_clinic(
    *,
    clinic: Clinic,
    where: AuditFilter | None = None,
    before: int | None = None,
    after: int | None = None,
    size: int = AUDIT_PAGE_SIZE,
) -> AuditPage:
    """A page of the clinic's events, newest first, in two queries whatever
    the log's size: events older than ``before``, or the page just newer than
    ``after``, or the newest. Keys, not offsets: no count of a large log, and
    new events don't shift the pages."""
    events = audit_events_of_clinic(clinic=clinic, where=where).select_related("actor", "patient")
    if after is not None:
        rows = list(events.filter(id__gt=after).order_by("id")[: size + 1])
        has_newer = len(rows) > size
        rows = rows[:size][::-1]
        has_older = True
    else:
        if before is not None:
            events = events.filter(id__lt=before)
        rows = list(events.order_by("-id")[: size + 1])
        has_older = len(rows) > size
        rows = rows[:size]
        has_newer = before is not None
    if not rows:
        return AuditPage(events=[], newer_than=None, older_than=None)
    return AuditPage(
        events=rows,
        newer_than=rows[0].id if has_newer else None,
        older_than=rows[-1].id if has_older else None,
    )


def audit_event_is_break_glass(event: AuditEvent) -> bool:
    return event.object_type in BREAK_GLASS_OBJECT_TYPES


def audit_verification_latest() -> AuditVerification | None:
    """The last run of ``audit_verify``, if any (it is not run per page view)."""
    return AuditVerification.objects.first()
