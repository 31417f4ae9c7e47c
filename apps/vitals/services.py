"""Recording readings and setting targets.

``reading_record`` (one reading) and ``readings_record_many`` (a batch: the
API's, a CSV import's) check access, consent, plausibility and the time,
store each reading once (the same reading sent twice is the same row),
flag it, audit it, and open an alert for the patient's doctors when it is
urgent or critical; the doctors' notifications (and the patient's advice,
when the patient did not just read it on the entry page) are written in
the same transaction and delivered after it commits. A batch costs a constant
number of queries per patient, whatever its size: the checks
(``readings_check_many``, also the CSV preview's) look the patient up
once and the duplicates in one query; the new rows, their alerts and
their audit events (one per reading and per alert) are inserted in
chunks, and the notifications sent in one call.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import User
from apps.accounts.selectors import consent_is_current, patient_can_be_seen_by_doctor
from apps.audit.models import AuditAction
from apps.audit.services import AuditEntry, audit_access_denied, audit_record, audit_record_many
from apps.notifications.models import Category, Channel
from apps.notifications.services import OutgoingMessage, notifications_send_many
from apps.vitals.flags import ALERTING, Severity, category_label, flag_reading
from apps.vitals.kinds import HEIGHT, WEIGHT, Kind, bmi, kind_get
from apps.vitals.models import ACKNOWLEDGE_NOTE_MAX_CHARS, Alert, AlertStatus, PatientTarget, Reading, Source
from apps.vitals.plausibility import NON_FIELD, values_check
from apps.vitals.selectors import (
    bp_guideline_for,
    patient_doctors,
    reading_entry_allowed,
    reading_targets,
)

CLOCK_SKEW = timedelta(minutes=5)
OLDEST = timedelta(days=366 * 20)  # older than this is a typing mistake
INSERT_CHUNK = 1000  # rows per INSERT
HASHES_PER_QUERY = 10_000  # content hashes per duplicate lookup (a whole CSV import)
INSERT_ATTEMPTS = 3  # a concurrent request may store some of the batch's readings first


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
class ReadingCheck:
    """What ``readings_check_many`` found for one item: its errors (field →
    messages; none: it can be recorded), else its content hash and whether
    it repeats an earlier item of the batch or was stored before."""

    errors: dict[str, list[str]] = field(default_factory=dict)
    content_hash: str = ""
    repeats: int | None = None  # the index of the batch's first item with the same reading
    stored: Reading | None = None  # the same reading, stored before (on the first such item)
    kind: Kind | None = None
    values: dict[str, Decimal] = field(default_factory=dict)  # canonical units

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def is_new(self) -> bool:
        return self.ok and self.repeats is None and self.stored is None


def _content_hash(*, kind: str, values: Mapping[str, Decimal], context: str, measured_at: datetime) -> str:
    moment = measured_at.astimezone(UTC).replace(microsecond=0).isoformat()
    numbers = ",".join(f"{name}={values[name].normalize():f}" for name in sorted(values))
    return hashlib.sha256(f"{kind}|{moment}|{context}|{numbers}".encode()).hexdigest()


def _patient_check(*, by: User, patient: User) -> None:
    """May ``by`` record readings for ``patient``, who consents? Else ReadingRefused."""
    if not reading_entry_allowed(user=by, patient=patient):
        audit_access_denied(actor=by, object_type="readings", object_id=patient.pk)
        raise ReadingRefused("not_found")
    if not consent_is_current(patient=patient):
        raise ReadingRefused(
            "no_consent", {NON_FIELD: [str(_("The patient has not consented to the processing of health data."))]}
        )


def _item_check(*, item: ReadingInput, now: datetime) -> ReadingCheck:
    """The checks of one item that need no query: kind, values, time, source, note."""
    try:
        kind = kind_get(item.kind)
    except KeyError:
        return ReadingCheck(errors={"kind": [str(_("Choose a kind of reading."))]})
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
        return ReadingCheck(errors=errors)
    content_hash = _content_hash(
        kind=kind.code, values=checked.values, context=item.context, measured_at=item.measured_at
    )
    return ReadingCheck(content_hash=content_hash, kind=kind, values=checked.values)


def _in_chunk() -> int:
    """Content hashes per query: PostgreSQL takes a whole batch, SQLite 999 parameters."""
    limit = connection.features.max_query_params
    return HASHES_PER_QUERY if limit is None else min(HASHES_PER_QUERY, limit - 10)


def _stored_readings(keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], Reading]:
    """The stored readings among (patient id, content hash) pairs: one query per patient (per chunk on SQLite)."""
    hashes_of: dict[int, list[str]] = defaultdict(list)
    for patient_id, content_hash in keys:
        hashes_of[patient_id].append(content_hash)
    chunk = _in_chunk()
    stored: dict[tuple[int, str], Reading] = {}
    for patient_id, hashes in hashes_of.items():
        for start in range(0, len(hashes), chunk):
            for reading in Reading.objects.filter(
                patient_id=patient_id, content_hash__in=hashes[start : start + chunk]
            ):
                stored[(patient_id, reading.content_hash)] = reading
    return stored


def _with_stored(checks: list[ReadingCheck], *, items: Sequence[ReadingInput]) -> list[ReadingCheck]:
    """``checks`` with ``stored`` looked up (again) for each first item of its reading."""
    first_of = {
        (items[index].patient.pk, check.content_hash): index
        for index, check in enumerate(checks)
        if check.ok and check.repeats is None
    }
    stored = _stored_readings(first_of)
    checked = list(checks)
    for key, index in first_of.items():
        checked[index] = replace(checked[index], stored=stored.get(key))
    return checked


def readings_check_many(*, by: User, items: Sequence[ReadingInput], now: datetime | None = None) -> list[ReadingCheck]:
    """Every check ``readings_record_many`` makes before it writes, for a
    whole batch, in a constant number of queries per patient: access (a
    refusal is audited), consent, then each item's kind, values, time,
    source and note, and the duplicates (repeated in the batch or stored
    before: one query per patient). Writes nothing else. Raises
    ReadingRefused (not_found or no_consent) at the first item whose patient
    ``by`` may not enter readings for, or who has not consented; every other
    refusal is in that item's ``errors``."""
    now = now or timezone.now()
    patients_checked: set[int] = set()
    first_of: dict[tuple[int, str], int] = {}
    checks: list[ReadingCheck] = []
    for index, item in enumerate(items):
        if item.patient.pk not in patients_checked:
            _patient_check(by=by, patient=item.patient)
            patients_checked.add(item.patient.pk)
        check = _item_check(item=item, now=now)
        if check.ok:
            key = (item.patient.pk, check.content_hash)
            if key in first_of:
                check = replace(check, repeats=first_of[key])
            else:
                first_of[key] = index
        checks.append(check)
    return _with_stored(checks, items=items)


def _json_values(values: Mapping[str, Decimal]) -> dict[str, float | int]:
    return {name: int(value) if value == value.to_integral_value() else float(value) for name, value in values.items()}


class _Heights:
    """The height a weight's BMI uses, as if the batch were stored one
    reading at a time: the profile's height, else the latest height reading
    (by time; on a tie the one stored last), this batch's new ones included
    from where they stand in it. The stored one is looked up once, if needed."""

    def __init__(self, patient: User) -> None:
        self.patient = patient
        self.batch_latest: tuple[datetime, Decimal] | None = None
        self._looked_up = False
        self._profile: Decimal | None = None
        self._stored: tuple[datetime, Decimal] | None = None

    def add(self, *, measured_at: datetime, height_cm: Decimal) -> None:
        if self.batch_latest is None or measured_at >= self.batch_latest[0]:
            self.batch_latest = (measured_at, height_cm)

    def _look_up(self) -> None:
        self._looked_up = True
        profile_height = getattr(getattr(self.patient, "patient_profile", None), "height_cm", None)
        if profile_height:
            self._profile = Decimal(str(profile_height))
            return
        latest = (
            Reading.objects.filter(patient=self.patient, kind=HEIGHT.code)
            .order_by("-measured_at", "-id")
            .values_list("measured_at", "values")
            .first()
        )
        if latest is not None:
            self._stored = (latest[0], Decimal(str(latest[1]["height"])))

    def for_bmi(self) -> Decimal | None:
        if not self._looked_up:
            self._look_up()
        if self._profile is not None:
            return self._profile
        if self.batch_latest is not None and (self._stored is None or self.batch_latest[0] >= self._stored[0]):
            return self.batch_latest[1]
        return self._stored[1] if self._stored is not None else None


class _PatientRules:
    """What flagging one patient's readings needs, looked up once a batch:
    the blood-pressure guideline, the doctor's targets and the heights."""

    def __init__(self, patient: User) -> None:
        self.guideline = bp_guideline_for(patient=patient)
        self.targets = reading_targets(patient=patient)
        self.heights = _Heights(patient)


def _readings_new(*, by: User, items: Sequence[ReadingInput], checks: list[ReadingCheck]) -> dict[int, Reading]:
    """The new readings, flagged, unsaved: item index → reading."""
    rules: dict[int, _PatientRules] = {}
    new: dict[int, Reading] = {}
    for index, (item, check) in enumerate(zip(items, checks, strict=True)):
        if not check.is_new or check.kind is None:
            continue
        patient = item.patient
        if patient.pk not in rules:
            rules[patient.pk] = _PatientRules(patient)
        patient_rules = rules[patient.pk]
        values = dict(check.values)
        if check.kind is WEIGHT:
            height_cm = patient_rules.heights.for_bmi()
            if height_cm:
                values["bmi"] = bmi(weight_kg=values["weight"], height_cm=height_cm)
        stored_values = _json_values(values)
        if check.kind is HEIGHT:
            patient_rules.heights.add(measured_at=item.measured_at, height_cm=Decimal(str(stored_values["height"])))
        flag = flag_reading(
            kind=check.kind.code,
            values=values,
            context=item.context,
            bp_guideline=patient_rules.guideline,
            targets=patient_rules.targets.get(check.kind.code, []),
        )
        new[index] = Reading(
            patient=patient,
            kind=check.kind.code,
            values=stored_values,
            context=item.context,
            measured_at=item.measured_at,
            source=item.source,
            entered_by=by,
            note=item.note.strip(),
            category=flag.category,
            severity=flag.severity,
            rule=flag.rule,
            content_hash=check.content_hash,
        )
    return new


def _alert_messages(
    *,
    alert: Alert,
    doctors: Sequence[tuple[User, int]],
    kind: str,
    category: str,
    measured_at: datetime,
    link: str,
    idempotency_prefix: str,
) -> list[OutgoingMessage]:
    """One message about ``alert`` to each of ``doctors``: in the app (live)
    always, and by SMS too when critical."""
    critical = alert.severity == Severity.CRITICAL
    channels = [Channel.IN_APP, Channel.SMS] if critical else [Channel.IN_APP]
    context = {
        "patient": alert.patient.full_name,
        "kind": kind,
        "category": category,
        "severity": alert.severity,
        "measured_at": measured_at.isoformat(),
        "link": link,
    }
    return [
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


def _patient_message(
    *,
    alert: Alert,
    template: str,
    kind: str,
    category: str,
    measured_at: datetime,
    link: str,
    idempotency_key: str,
    doctors_told: bool,
    sms_when_critical: bool = True,
) -> OutgoingMessage:
    """The message about ``alert`` to the patient, in their language: in
    the app, and by SMS too when critical (the SMS carries no health
    detail, only a link and the emergency number: see docs/vitals.md).
    Urgent, so quiet hours don't hold it."""
    critical = sms_when_critical and alert.severity == Severity.CRITICAL
    return OutgoingMessage(
        recipient=alert.patient,
        category=Category.READINGS_ALERT,
        template=template,
        context={
            "kind": kind,
            "category": category,
            "severity": alert.severity,
            "measured_at": measured_at.isoformat(),
            "link": link,
            "number": emergency_number(),
            "doctors_told": doctors_told,
        },
        idempotency_key=idempotency_key,
        urgent=True,
        channels=[Channel.IN_APP, Channel.SMS] if critical else [Channel.IN_APP],
        sensitive=True,
    )


def _patient_is_told(reading: Reading) -> bool:
    """Whether the patient gets the advice as a message: always, unless
    they entered the reading themselves on the entry page, which shows it
    right after saving (an API or device upload, a CSV import, staff on
    their behalf: nobody shows it to them)."""
    return reading.source != Source.MANUAL


def alert_notify(
    *, alert: Alert, kind: str, category: str, measured_at: datetime, link: str, idempotency_prefix: str
) -> int:
    """One message about ``alert`` to each of the patient's doctors: in the
    app (live) always, and by SMS too when critical. Delivery starts once
    the transaction commits; sending it again sends nothing new. ECG
    recordings alert through here (a batch of readings sends all its
    alerts' messages at once), and the patient is told in the app, calmly
    and without a diagnosis, that the recording went to their doctor
    (the analysis ends after the upload page, so nobody shows it to
    them). Returns the number of doctors."""
    doctors = patient_doctors(patient=alert.patient)
    messages = _alert_messages(
        alert=alert,
        doctors=doctors,
        kind=kind,
        category=category,
        measured_at=measured_at,
        link=link,
        idempotency_prefix=idempotency_prefix,
    )
    if kind == "ecg":
        messages.append(
            _patient_message(
                alert=alert,
                template="readings/ecg_sent",
                kind=kind,
                category=category,
                measured_at=measured_at,
                link=link,
                idempotency_key=f"{idempotency_prefix}-patient:{alert.pk}",
                doctors_told=bool(doctors),
                sms_when_critical=False,
            )
        )
    notifications_send_many(messages=messages)
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
    """Record several readings (of one or more patients), all or nothing,
    in a constant number of queries per patient whatever their number (see
    ``readings_check_many``; the new rows inserted in chunks, their audit
    events, alerts and the doctors' notifications likewise). One item:
    raises ReadingRefused; several: BatchRefused with every item's errors
    (an item for a patient ``by`` may not enter for, or one without
    consent, refuses the whole batch with that code)."""
    checks = readings_check_many(by=by, items=items, now=now)
    errors = {index: check.errors for index, check in enumerate(checks) if check.errors}
    if errors:
        if len(items) == 1:
            raise ReadingRefused("invalid", errors[0])
        raise BatchRefused("invalid", errors)
    if not items:
        return []
    with transaction.atomic():
        return _store_many(by=by, items=items, checks=checks)


def _store_many(*, by: User, items: Sequence[ReadingInput], checks: list[ReadingCheck]) -> list[Recorded]:
    for attempt in range(1, INSERT_ATTEMPTS + 1):
        new = _readings_new(by=by, items=items, checks=checks)
        try:
            with transaction.atomic():
                Reading.objects.bulk_create(list(new.values()), batch_size=INSERT_CHUNK)
            break
        except IntegrityError:  # some of them stored meanwhile by a concurrent request
            if attempt == INSERT_ATTEMPTS:
                raise
            checks = _with_stored(checks, items=items)
    alerts = {
        index: Alert(patient=reading.patient, reading=reading, severity=reading.severity)
        for index, reading in new.items()
        if reading.severity in ALERTING
    }
    Alert.objects.bulk_create(list(alerts.values()), batch_size=INSERT_CHUNK)
    entries: list[AuditEntry] = []
    for index, reading in new.items():
        entries.append(AuditEntry(AuditAction.CREATE, "reading", reading.pk, patient=reading.patient))
        if index in alerts:
            entries.append(AuditEntry(AuditAction.CREATE, "alert", alerts[index].pk, patient=reading.patient))
    audit_record_many(actor=by, entries=entries)
    doctors = _alerts_notify([(alert, new[index]) for index, alert in alerts.items()])
    recorded: list[Recorded] = []
    for index, check in enumerate(checks):
        if index in new:
            alert = alerts.get(index)
            told = len(doctors[alert.patient_id]) if alert is not None else 0
            recorded.append(Recorded(reading=new[index], created=True, alert=alert, doctors_told=told))
        elif check.stored is not None:
            recorded.append(Recorded(reading=check.stored, created=False))
        else:
            assert check.repeats is not None  # neither new nor stored: a repeat of an earlier item
            recorded.append(Recorded(reading=recorded[check.repeats].reading, created=False))
    return recorded


def _alerts_notify(alerts: Sequence[tuple[Alert, Reading]]) -> dict[int, list[tuple[User, int]]]:
    """The messages of every alert to the patient's doctors, and the
    advice to the patient (see ``_patient_is_told``), sent at once (the
    doctors looked up once per patient): patient id → doctors."""
    doctors: dict[int, list[tuple[User, int]]] = {}
    links: dict[int, str] = {}
    messages: list[OutgoingMessage] = []
    for alert, reading in alerts:
        if alert.patient_id not in doctors:
            doctors[alert.patient_id] = patient_doctors(patient=alert.patient)
            links[alert.patient_id] = reverse("vitals:patient_readings", args=[alert.patient_id])
        messages += _alert_messages(
            alert=alert,
            doctors=doctors[alert.patient_id],
            kind=reading.kind,
            category=reading.category,
            measured_at=reading.measured_at,
            link=links[alert.patient_id],
            idempotency_prefix="reading-alert",
        )
        if _patient_is_told(reading):
            messages.append(
                _patient_message(
                    alert=alert,
                    template="readings/advice",
                    kind=reading.kind,
                    category=reading.category,
                    measured_at=reading.measured_at,
                    link=reverse("vitals:reading", args=[reading.pk]),
                    idempotency_key=f"reading-advice:{alert.pk}",
                    doctors_told=bool(doctors[alert.patient_id]),
                )
            )
    if messages:
        notifications_send_many(messages=messages)
    return doctors


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
    if not patient_can_be_seen_by_doctor(user=by, patient=patient):
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
    if not patient_can_be_seen_by_doctor(user=by, patient=patient):
        raise TargetRefused("not_found")
    with transaction.atomic():
        target = PatientTarget.objects.filter(patient=patient, kind=kind, field=field).first()
        if target is not None:
            audit_record(
                action=AuditAction.DELETE, actor=by, object_type="patient_target", object_id=target.pk, patient=patient
            )
            target.delete()


# --- Alerts --------------------------------------------------------------------


class AlertRefused(Exception):
    """Nothing changed. ``code``: not_found (no access; answer "not found"),
    invalid (``message`` says why: the note), already (acknowledged before)."""

    def __init__(self, code: str, message: str = "") -> None:
        self.code = code
        self.message = message
        super().__init__(code)


def alert_acknowledge(*, alert: Alert, by: User, note: str) -> Alert:
    """A doctor who sees the patient's record acknowledges an open alert
    with a short note (required): it leaves the triage queue and stays in
    the chart, with who, when and the note. Audited."""
    if not patient_can_be_seen_by_doctor(user=by, patient=alert.patient):
        audit_access_denied(actor=by, object_type="alert", object_id=alert.pk)
        raise AlertRefused("not_found")
    note = " ".join(note.split())
    if not note:
        raise AlertRefused("invalid", str(_("Say in a few words what you did or decided.")))
    if len(note) > ACKNOWLEDGE_NOTE_MAX_CHARS:
        raise AlertRefused(
            "invalid",
            str(_("Keep the note under %(count)d characters.") % {"count": ACKNOWLEDGE_NOTE_MAX_CHARS}),
        )
    with transaction.atomic():
        locked = Alert.objects.select_for_update().get(pk=alert.pk)
        if locked.status != AlertStatus.OPEN:
            raise AlertRefused("already", str(_("This alert was already acknowledged.")))
        locked.status = AlertStatus.ACKNOWLEDGED
        locked.acknowledged_by = by
        locked.acknowledged_at = timezone.now()
        locked.acknowledge_note = note
        locked.save(update_fields=["status", "acknowledged_by", "acknowledged_at", "acknowledge_note"])
        audit_record(
            action=AuditAction.UPDATE, actor=by, object_type="alert", object_id=locked.pk, patient=alert.patient
        )
    return locked


def emergency_number() -> str:
    return str(getattr(settings, "VITALS_EMERGENCY_NUMBER", "120"))


def alert_summary(reading: Reading) -> str:
    return f"{kind_get(reading.kind).label}: {category_label(reading.category)}"
