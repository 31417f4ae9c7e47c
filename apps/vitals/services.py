"""Recording readings and setting targets.

``reading_record`` checks access, consent, plausibility and the time,
stores the reading once (the same reading sent twice is the same row),
flags it, audits it, and opens an alert for the patient's doctors when it
is urgent or critical; the doctors' notifications are written in the same
transaction and delivered after it commits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import User
from apps.accounts.selectors import consent_is_current, patient_can_be_seen_by
from apps.audit.models import AuditAction
from apps.audit.services import audit_record
from apps.notifications.models import Category, Channel
from apps.notifications.services import OutgoingMessage, notifications_send_many
from apps.vitals.flags import ALERTING, Severity, category_label, flag_reading
from apps.vitals.kinds import WEIGHT, Kind, bmi, kind_get
from apps.vitals.models import Alert, PatientTarget, Reading, Source
from apps.vitals.plausibility import NON_FIELD, values_check
from apps.vitals.selectors import (
    bp_guideline_for,
    latest_height_cm,
    patient_doctors,
    reading_entry_allowed,
    reading_targets,
)

CLOCK_SKEW = timedelta(minutes=5)
OLDEST = timedelta(days=366 * 20)  # older than this is a typing mistake


class ReadingRefused(Exception):
    """Nothing was stored. ``code``: not_found (no access; answer "not
    found"), no_consent, invalid (see ``errors``: field → messages)."""

    def __init__(self, code: str, errors: Mapping[str, list[str]] | None = None) -> None:
        self.code = code
        self.errors = dict(errors or {})
        super().__init__(code)

    @property
    def message(self) -> str:
        return " ".join(message for messages in self.errors.values() for message in messages)


@dataclass(frozen=True)
class ReadingInput:
    """One reading of ``patient`` as entered: values in ``unit`` (glucose only)."""

    patient: User
    kind: str
    values: Mapping[str, Any]
    measured_at: datetime
    source: str
    note: str = ""
    context: str = ""
    unit: str = ""


@dataclass(frozen=True)
class Recorded:
    reading: Reading
    created: bool  # False: the same reading was stored before
    alert: Alert | None = None
    doctors_told: int = 0


@dataclass(frozen=True)
class _Prepared:
    kind: Kind
    values: dict[str, Decimal]
    item: ReadingInput
    content_hash: str


def _content_hash(*, kind: str, values: Mapping[str, Decimal], context: str, measured_at: datetime) -> str:
    moment = measured_at.astimezone(UTC).replace(microsecond=0).isoformat()
    numbers = ",".join(f"{name}={values[name].normalize():f}" for name in sorted(values))
    return hashlib.sha256(f"{kind}|{moment}|{context}|{numbers}".encode()).hexdigest()


def _prepare(*, by: User, item: ReadingInput, now: datetime) -> _Prepared:
    """Every check that needs no write; ReadingRefused if one fails."""
    patient = item.patient
    if not reading_entry_allowed(user=by, patient=patient):
        audit_record(
            action=AuditAction.ACCESS_DENIED,
            actor=by,
            object_type="readings",
            object_id=patient.pk,
            outcome="failure",
        )
        raise ReadingRefused("not_found")
    if not consent_is_current(patient=patient):
        raise ReadingRefused(
            "no_consent", {NON_FIELD: [str(_("The patient has not consented to the processing of health data."))]}
        )
    try:
        kind = kind_get(item.kind)
    except KeyError:
        raise ReadingRefused("invalid", {"kind": [str(_("Choose a kind of reading."))]}) from None
    checked = values_check(kind=kind, raw=item.values, unit=item.unit, context=item.context)
    errors = dict(checked.errors)
    if timezone.is_naive(item.measured_at):
        errors.setdefault("measured_at", []).append(str(_("Give the time with its time zone.")))
    elif item.measured_at > now + CLOCK_SKEW:
        errors.setdefault("measured_at", []).append(str(_("The time of measurement cannot be in the future.")))
    elif item.measured_at < now - OLDEST:
        errors.setdefault("measured_at", []).append(str(_("The time of measurement is too long ago.")))
    if item.source not in Source.values:
        errors.setdefault("source", []).append(str(_("Unknown source.")))
    if len(item.note) > 500:
        errors.setdefault("note", []).append(str(_("Keep the note under 500 characters.")))
    if errors:
        raise ReadingRefused("invalid", errors)
    content_hash = _content_hash(
        kind=kind.code, values=checked.values, context=item.context, measured_at=item.measured_at
    )
    return _Prepared(kind=kind, values=checked.values, item=item, content_hash=content_hash)


def _json_values(values: Mapping[str, Decimal]) -> dict[str, float | int]:
    return {name: int(value) if value == value.to_integral_value() else float(value) for name, value in values.items()}


def _store(*, by: User, prepared: _Prepared) -> Recorded:
    patient = prepared.item.patient
    earlier = Reading.objects.filter(patient=patient, content_hash=prepared.content_hash).first()
    if earlier is not None:
        return Recorded(reading=earlier, created=False)
    values = dict(prepared.values)
    if prepared.kind is WEIGHT:
        height_cm = latest_height_cm(patient=patient)
        if height_cm:
            values["bmi"] = bmi(weight_kg=values["weight"], height_cm=height_cm)
    flag = flag_reading(
        kind=prepared.kind.code,
        values=values,
        context=prepared.item.context,
        bp_guideline=bp_guideline_for(patient=patient),
        targets=reading_targets(patient=patient, kind=prepared.kind.code),
    )
    reading = Reading(
        patient=patient,
        kind=prepared.kind.code,
        values=_json_values(values),
        context=prepared.item.context,
        measured_at=prepared.item.measured_at,
        source=prepared.item.source,
        entered_by=by,
        note=prepared.item.note.strip(),
        category=flag.category,
        severity=flag.severity,
        rule=flag.rule,
        content_hash=prepared.content_hash,
    )
    try:
        with transaction.atomic():
            reading.save()
    except IntegrityError:  # the same reading, stored by a concurrent request
        return Recorded(reading=Reading.objects.get(patient=patient, content_hash=prepared.content_hash), created=False)
    audit_record(action=AuditAction.CREATE, actor=by, object_type="reading", object_id=reading.pk, patient=patient)
    alert, told = (None, 0)
    if flag.severity in ALERTING:
        alert, told = _alert_open(reading=reading, by=by)
    return Recorded(reading=reading, created=True, alert=alert, doctors_told=told)


def _alert_open(*, reading: Reading, by: User) -> tuple[Alert, int]:
    alert = Alert.objects.create(patient=reading.patient, reading=reading, severity=reading.severity)
    audit_record(action=AuditAction.CREATE, actor=by, object_type="alert", object_id=alert.pk, patient=reading.patient)
    told = alert_notify(
        alert=alert,
        kind=reading.kind,
        category=reading.category,
        measured_at=reading.measured_at,
        link=reverse("vitals:patient_readings", args=[reading.patient_id]),
        idempotency_prefix="reading-alert",
    )
    return alert, told


def alert_notify(
    *, alert: Alert, kind: str, category: str, measured_at: datetime, link: str, idempotency_prefix: str
) -> int:
    """One message about ``alert`` to each of the patient's doctors: in the
    app (live) always, and by SMS too when critical. Delivery starts once
    the transaction commits; sending it again sends nothing new. Readings
    and ECG recordings alert through here. Returns the number of doctors."""
    critical = alert.severity == Severity.CRITICAL
    channels = [Channel.IN_APP, Channel.SMS] if critical else [Channel.IN_APP]
    doctors = patient_doctors(patient=alert.patient)
    context = {
        "patient": alert.patient.full_name,
        "kind": kind,
        "category": category,
        "severity": alert.severity,
        "measured_at": measured_at.isoformat(),
        "link": link,
    }
    notifications_send_many(
        messages=[
            OutgoingMessage(
                recipient=doctor,
                category=Category.READINGS_ALERT,
                template="readings/alert",
                context=context,
                idempotency_key=f"{idempotency_prefix}:{alert.pk}:{doctor.pk}",
                urgent=True,
                clinic_id=clinic_id,
                channels=channels,
                sensitive=True,
            )
            for doctor, clinic_id in doctors
        ]
    )
    return len(doctors)


def reading_record(
    *,
    patient: User,
    by: User,
    kind: str,
    values: Mapping[str, Any],
    measured_at: datetime,
    source: str,
    note: str = "",
    context: str = "",
    unit: str = "",
    now: datetime | None = None,
) -> Recorded:
    """Record one reading of ``patient`` entered by ``by`` (``values`` in
    ``unit``, which only glucose uses: mmol/L or mg/dL). Raises
    ReadingRefused, with nothing stored, when it cannot be."""
    item = ReadingInput(
        patient=patient,
        kind=kind,
        values=values,
        measured_at=measured_at,
        source=source,
        note=note,
        context=context,
        unit=unit,
    )
    return readings_record_many(by=by, items=[item], now=now)[0]


class BatchRefused(Exception):
    """At least one item of a batch was refused; nothing was stored.
    ``errors``: item index → field → messages; ``code`` the first refusal's."""

    def __init__(self, code: str, errors: dict[int, dict[str, list[str]]]) -> None:
        self.code = code
        self.errors = errors
        super().__init__(code)


def readings_record_many(*, by: User, items: Sequence[ReadingInput], now: datetime | None = None) -> list[Recorded]:
    """Record several readings (of one or more patients), all or nothing.
    One item: raises ReadingRefused; several: BatchRefused with every
    item's errors (an item for a patient ``by`` may not enter for, or one
    without consent, refuses the whole batch with that code)."""
    now = now or timezone.now()
    prepared: list[_Prepared] = []
    errors: dict[int, dict[str, list[str]]] = {}
    first_code = ""
    for index, item in enumerate(items):
        try:
            prepared.append(_prepare(by=by, item=item, now=now))
        except ReadingRefused as refused:
            if len(items) == 1 or refused.code in {"not_found", "no_consent"}:
                raise
            first_code = first_code or refused.code
            errors[index] = refused.errors
    if errors:
        raise BatchRefused(first_code, errors)
    with transaction.atomic():
        return [_store(by=by, prepared=one) for one in prepared]


# --- Targets -------------------------------------------------------------------


class TargetRefused(Exception):
    def __init__(self, code: str, message: str = "") -> None:
        self.code = code
        self.message = message
        super().__init__(code)


def patient_target_set(
    *, patient: User, by: User, kind: str, field: str, low: Decimal | None, high: Decimal | None
) -> PatientTarget:
    """A doctor who sees the patient's record sets (or replaces) their
    target for one value; it applies to readings recorded from now on."""
    from apps.clinics.selectors import UserRole, user_roles

    if UserRole.DOCTOR not in user_roles(user=by) or not patient_can_be_seen_by(user=by, patient=patient):
        raise TargetRefused("not_found")
    try:
        spec = kind_get(kind)
        spec.field(field)
    except KeyError:
        raise TargetRefused("invalid", str(_("Choose a value of this kind of reading."))) from None
    if low is None and high is None:
        raise TargetRefused("invalid", str(_("Give a lowest value, a highest value or both.")))
    if low is not None and high is not None and low >= high:
        raise TargetRefused("invalid", str(_("The lowest value must be below the highest.")))
    with transaction.atomic():
        target, _created = PatientTarget.objects.update_or_create(
            patient=patient, kind=kind, field=field, defaults={"low": low, "high": high, "set_by": by}
        )
        audit_record(
            action=AuditAction.UPDATE, actor=by, object_type="patient_target", object_id=target.pk, patient=patient
        )
    return target


def patient_target_remove(*, patient: User, by: User, kind: str, field: str) -> None:
    from apps.clinics.selectors import UserRole, user_roles

    if UserRole.DOCTOR not in user_roles(user=by) or not patient_can_be_seen_by(user=by, patient=patient):
        raise TargetRefused("not_found")
    with transaction.atomic():
        target = PatientTarget.objects.filter(patient=patient, kind=kind, field=field).first()
        if target is not None:
            audit_record(
                action=AuditAction.DELETE, actor=by, object_type="patient_target", object_id=target.pk, patient=patient
            )
            target.delete()


def emergency_number() -> str:
    return str(getattr(settings, "VITALS_EMERGENCY_NUMBER", "120"))


def alert_summary(reading: Reading) -> str:
    return f"{kind_get(reading.kind).label}: {category_label(reading.category)}"
