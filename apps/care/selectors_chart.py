"""The patient chart: what a doctor sees of one patient on one page, read
in a fixed number of queries whatever the size of the record (each part is
one query with a limit; the timeline merges the newest rows of each source).

Access goes through ``patient_get_for_user`` (accounts.selectors: shared
appointment, open referral, care team, break-glass); what the caller may
not see is "not found", and every chart and timeline read is audited as a
view of the patient's record. Clinic admins do not read the chart:
clinical content is the doctors' (docs/care-access.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Q, Subquery
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from apps.accounts.models import Consent, ConsentKind, PatientProfile, User
from apps.accounts.selectors import patient_get_for_user
from apps.audit.models import AuditAction
from apps.audit.services import AuditEntry, audit_access_denied, audit_record, audit_record_many
from apps.care.icd10 import icd10_label
from apps.care.models import BreakGlassAccess, ConsultNote, Diagnosis, NoteStatus, Referral
from apps.care.selectors import PatientAccess, break_glass_active_for, patient_access_reason, referrals_of_patient
from apps.care.selectors_notes import DiagnosisRow, notes_readable, problem_list
from apps.clinics.selectors import UserRole, user_roles
from apps.scheduling.models import Appointment, AppointmentStatus
from apps.vitals.display import kind_label, reading_values_display
from apps.vitals.flags import Severity
from apps.vitals.kinds import GLUCOSE, KINDS, glucose_display
from apps.vitals.models import Alert, AlertStatus, EcgRecording, PatientTarget, Reading
from apps.vitals.selectors import glucose_unit_for

SECTION_LIMIT = 10  # rows per section of the chart (ECGs, appointments, alerts)
TRENDS_DAYS = 90  # the trends' period, and the alerts marked on them
TRENDS_ALERTS = 500  # at most this many alert markers
TIMELINE_PAGE = 20  # timeline items per page ("Show more" loads the next)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- The timeline ------------------------------------------------------------------


class TimelineKind:
    """The kinds of timeline item, in their order among items of one time."""

    READING = "reading"
    ECG = "ecg"
    APPOINTMENT = "appointment"
    NOTE = "note"
    DIAGNOSIS = "diagnosis"
    REFERRAL = "referral"

    ORDER = (READING, ECG, APPOINTMENT, NOTE, DIAGNOSIS, REFERRAL)


def _rank(kind: str) -> int:
    return TimelineKind.ORDER.index(kind)


@dataclass(frozen=True)
class TimelineItem:
    kind: str  # TimelineKind
    at: datetime
    object_id: int
    title: str
    detail: str = ""
    url: str = ""
    severity: str = ""  # a reading's or ECG's severity, for the badge
    status: str = ""  # an appointment's, note's or referral's status label

    @property
    def sort_key(self) -> tuple[datetime, int, int]:
        return (self.at, _rank(self.kind), self.object_id)

    @property
    def cursor(self) -> str:
        return TimelineCursor(at=self.at, rank=_rank(self.kind), object_id=self.object_id).encode()


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class TimelineCursor:
    """Where a page of the timeline ended: the last item's time, kind and id
    (items are ordered by all three, newest first, so no item is lost or
    shown twice when several share a time)."""

    at: datetime
    rank: int
    object_id: int

    def encode(self) -> str:
        delta = self.at - _EPOCH
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        return f"{micros}.{self.rank}.{self.object_id}"

    @classmethod
    def decode(cls, text: str) -> TimelineCursor:
        parts = text.split(".")
        if len(parts) != 3 or not all(part.lstrip("-").isdigit() for part in parts):
            raise BadCursor(text)
        micros, rank, object_id = (int(part) for part in parts)
        if not 0 <= rank < len(TimelineKind.ORDER) or abs(micros) > 10**17:
            raise BadCursor(text)
        return cls(at=_EPOCH + timedelta(microseconds=micros), rank=rank, object_id=object_id)


def _older_than(cursor: TimelineCursor | None, *, time_field: str, kind: str) -> Q:
    """Rows of ``kind`` after ``cursor`` in the timeline's order."""
    if cursor is None:
        return Q()
    rank = _rank(kind)
    if rank < cursor.rank:
        return Q(**{f"{time_field}__lte": cursor.at})
    if rank > cursor.rank:
        return Q(**{f"{time_field}__lt": cursor.at})
    return Q(**{f"{time_field}__lt": cursor.at}) | Q(**{time_field: cursor.at, "pk__lt": cursor.object_id})


@dataclass(frozen=True)
class TimelineQuery:
    patient: User
    viewer: User
    cursor: TimelineCursor | None
    limit: int
    now: datetime
    glucose_unit: str
    only: str = ""  # one TimelineKind, or "" for all


TimelineSource = Callable[[TimelineQuery], Iterable[TimelineItem]]


def _readings_items(query: TimelineQuery) -> Iterable[TimelineItem]:
    """Flagged readings (attention and worse); the normal ones are in the trends."""
    rows = (
        Reading.objects.filter(patient=query.patient, measured_at__lte=query.now)
        .exclude(severity=Severity.NORMAL)
        .filter(_older_than(query.cursor, time_field="measured_at", kind=TimelineKind.READING))
        .select_related("alert", "alert__acknowledged_by")
        .order_by("-measured_at", "-id")[: query.limit + 1]
    )
    for reading in rows:
        alert = getattr(reading, "alert", None)
        detail = reading.category_label
        if alert is not None:
            detail = f"{detail} · {alert_text(alert)}"
        yield TimelineItem(
            kind=TimelineKind.READING,
            at=reading.measured_at,
            object_id=reading.pk,
            title=f"{kind_label(reading.kind)}: {reading_values_display(reading, glucose_unit=query.glucose_unit)}",
            detail=detail,
            url=reverse("vitals:reading", args=[reading.pk]),
            severity=reading.severity,
        )


def alert_text(alert: Alert) -> str:
    """Where the alert stands: open, or who acknowledged it, when, and their note."""
    if alert.status != AlertStatus.ACKNOWLEDGED or alert.acknowledged_by is None:
        return _("alert open")
    text = _("alert acknowledged by %(doctor)s on %(day)s") % {
        "doctor": alert.acknowledged_by.full_name,
        "day": f"{timezone.localtime(alert.acknowledged_at or alert.created_at):%Y-%m-%d}",
    }
    return f"{text}: {alert.acknowledge_note}" if alert.acknowledge_note else text


def _ecg_items(query: TimelineQuery) -> Iterable[TimelineItem]:
    rows = (
        EcgRecording.objects.filter(patient=query.patient, created_at__lte=query.now)
        .filter(_older_than(query.cursor, time_field="created_at", kind=TimelineKind.ECG))
        .defer("summary", "failure_messages")
        .select_related("alert", "alert__acknowledged_by")
        .order_by("-created_at", "-id")[: query.limit + 1]
    )
    for recording in rows:
        detail = recording.get_status_display() if not recording.category else _ecg_category(recording)
        alert = getattr(recording, "alert", None)
        if alert is not None:
            detail = f"{detail} · {alert_text(alert)}"
        yield TimelineItem(
            kind=TimelineKind.ECG,
            at=recording.created_at,
            object_id=recording.pk,
            title=_("ECG uploaded"),
            detail=detail,
            url=reverse("vitals:ecg_recording", args=[recording.pk]),
            severity=recording.severity,
        )


def _ecg_category(recording: EcgRecording) -> str:
    from apps.vitals.display import category_label

    return str(category_label(recording.category))


def _appointment_items(query: TimelineQuery) -> Iterable[TimelineItem]:
    """Appointments that have started (the upcoming ones have their own list)."""
    rows = (
        Appointment.objects.filter(patient=query.patient, starts_at__lte=query.now)
        .filter(_older_than(query.cursor, time_field="starts_at", kind=TimelineKind.APPOINTMENT))
        .select_related("doctor", "clinic")
        .order_by("-starts_at", "-id")[: query.limit + 1]
    )
    for appointment in rows:
        yield TimelineItem(
            kind=TimelineKind.APPOINTMENT,
            at=appointment.starts_at,
            object_id=appointment.pk,
            title=_("Appointment with %(doctor)s") % {"doctor": appointment.doctor.full_name},
            detail=appointment.reason or appointment.clinic.name,
            url=_appointment_url(appointment, viewer=query.viewer),
            status=appointment.get_status_display(),
        )


def _appointment_url(appointment: Appointment, *, viewer: User) -> str:
    if appointment.doctor_id != viewer.pk:
        return ""  # another doctor's appointment: its page is theirs
    return reverse("scheduling:detail", args=[appointment.pk])


def _note_items(query: TimelineQuery) -> Iterable[TimelineItem]:
    """Notes as ``note_readable_by`` allows: signed ones, and the viewer's
    own drafts; at the consult's time."""
    rows = (
        ConsultNote.objects.filter(patient=query.patient, appointment__starts_at__lte=query.now)
        .filter(Q(status=NoteStatus.SIGNED) | Q(author=query.viewer, status=NoteStatus.DRAFT))
        .filter(_older_than(query.cursor, time_field="appointment__starts_at", kind=TimelineKind.NOTE))
        .select_related("author", "appointment")
        .order_by("-appointment__starts_at", "-id")[: query.limit + 1]
    )
    for note in rows:
        yield TimelineItem(
            kind=TimelineKind.NOTE,
            at=note.appointment.starts_at,
            object_id=note.pk,
            title=_("Consult note by %(doctor)s") % {"doctor": note.author.full_name},
            detail=_first_line(note.assessment),
            url=note_url(note.pk),
            status=note.get_status_display(),
        )


def _diagnosis_items(query: TimelineQuery) -> Iterable[TimelineItem]:
    """Diagnoses of signed notes, when they were recorded."""
    rows = (
        Diagnosis.objects.filter(patient=query.patient, note__status=NoteStatus.SIGNED, recorded_at__lte=query.now)
        .filter(_older_than(query.cursor, time_field="recorded_at", kind=TimelineKind.DIAGNOSIS))
        .order_by("-recorded_at", "-id")[: query.limit + 1]
    )
    for diagnosis in rows:
        yield TimelineItem(
            kind=TimelineKind.DIAGNOSIS,
            at=diagnosis.recorded_at,
            object_id=diagnosis.pk,
            title=f"{diagnosis.code} {_diagnosis_label(diagnosis)}",
            url=note_url(diagnosis.note_id),
            status=diagnosis.get_status_display(),
        )


def _referral_items(query: TimelineQuery) -> Iterable[TimelineItem]:
    rows = (
        Referral.objects.filter(patient=query.patient, created_at__lte=query.now)
        .filter(_older_than(query.cursor, time_field="created_at", kind=TimelineKind.REFERRAL))
        .select_related("from_doctor", "to_doctor", "to_specialty")
        .order_by("-created_at", "-id")[: query.limit + 1]
    )
    for referral in rows:
        yield referral_item(referral, viewer=query.viewer)


def referral_item(referral: Referral, *, viewer: User) -> TimelineItem:
    if referral.to_doctor is not None:
        to = referral.to_doctor.full_name
    elif referral.to_specialty is not None:
        to = str(referral.to_specialty)
    else:
        to = ""
    return TimelineItem(
        kind=TimelineKind.REFERRAL,
        at=referral.created_at,
        object_id=referral.pk,
        title=_("Referred to %(to)s by %(doctor)s") % {"to": to, "doctor": referral.from_doctor.full_name},
        detail=f"{referral.get_urgency_display()} · {_first_line(referral.reason)}",
        url=_referral_url(referral, viewer=viewer),
        status=referral.get_status_display(),
    )


def _referral_url(referral: Referral, *, viewer: User) -> str:
    """The referral's page, for the doctors it is between (others would find it "not found")."""
    if viewer.pk not in (referral.from_doctor_id, referral.to_doctor_id):
        return ""
    return reverse("care:referral_detail", args=[referral.pk])


def _first_line(text: str, length: int = 120) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= length else line[: length - 1] + "…"


def _diagnosis_label(diagnosis: Diagnosis) -> str:
    return icd10_label(code=diagnosis.code, description=diagnosis.description, language=get_language())


def note_url(note_id: int) -> str:
    return reverse("care:note", args=[note_id])


_SOURCES: dict[str, TimelineSource] = {
    TimelineKind.READING: _readings_items,
    TimelineKind.ECG: _ecg_items,
    TimelineKind.APPOINTMENT: _appointment_items,
    TimelineKind.NOTE: _note_items,
    TimelineKind.DIAGNOSIS: _diagnosis_items,
    TimelineKind.REFERRAL: _referral_items,
}


@dataclass(frozen=True)
class TimelinePage:
    items: list[TimelineItem]
    next_cursor: str  # "" when there is nothing older
    only: str = ""  # the kind it is filtered by


def _timeline(query: TimelineQuery) -> TimelinePage:
    """One query per source (each limited to a page plus one), merged."""
    items: list[TimelineItem] = []
    for kind in (query.only,) if query.only else TimelineKind.ORDER:
        items.extend(_SOURCES[kind](query))
    items.sort(key=lambda item: item.sort_key, reverse=True)
    page = items[: query.limit]
    more = len(items) > query.limit
    return TimelinePage(items=page, next_cursor=page[-1].cursor if more and page else "", only=query.only)


def patient_timeline_get_for_user(
    *, user: User, patient_id: int, cursor: str = "", only: str = "", limit: int = TIMELINE_PAGE
) -> tuple[User, TimelinePage]:
    """A page of the patient's timeline (older than ``cursor``; of one kind
    when ``only`` names one), newest first. BadCursor for a cursor or kind
    that is not one."""
    parsed = TimelineCursor.decode(cursor) if cursor else None
    if only and only not in TimelineKind.ORDER:
        raise BadCursor(only)
    patient = chart_patient_get_for_user(user=user, patient_id=patient_id)
    audit_record(
        action=AuditAction.VIEW, actor=user, object_type="patient_timeline", object_id=patient.pk, patient=patient
    )
    page = _timeline(
        TimelineQuery(
            patient=patient,
            viewer=user,
            cursor=parsed,
            limit=limit,
            now=timezone.now(),
            glucose_unit=glucose_unit_for(user=user),
            only=only,
        )
    )
    return patient, page


# --- The chart -----------------------------------------------------------------------


@dataclass(frozen=True)
class TargetRow:
    kind: str
    field: str
    label: str
    low: Decimal | None
    high: Decimal | None
    unit: str
    set_by: str
    updated_at: datetime


@dataclass(frozen=True)
class TrendAlert:
    kind: str
    measured_at: datetime
    severity: str
    status: str


def _trend_alerts(patient: User, now: datetime) -> list[TrendAlert]:
    """The alerts readings raised in the trends' period (one query)."""
    rows = (
        Alert.objects.filter(
            patient=patient,
            reading__isnull=False,
            reading__measured_at__gte=now - timedelta(days=TRENDS_DAYS),
        )
        .order_by("-reading__measured_at")
        .values_list("reading__kind", "reading__measured_at", "severity", "status")[:TRENDS_ALERTS]
    )
    return [
        TrendAlert(kind=kind, measured_at=at, severity=severity, status=status) for kind, at, severity, status in rows
    ]


@dataclass
class PatientChart:
    patient: User
    profile: PatientProfile
    age_years: int | None
    consent: Consent | None
    consent_current: bool
    latest_readings: list[tuple[Reading, str]]  # (reading, its values as text), in the kinds' order
    open_alerts: list[Alert]
    trend_alerts: list[TrendAlert]  # the alerts marked on the trends
    targets: list[TargetRow]
    ecgs: list[EcgRecording]
    ecgs_more: bool
    upcoming: list[Appointment]
    past: list[Appointment]
    past_more: bool
    timeline: TimelinePage
    glucose_unit: str
    access: PatientAccess | None
    break_glass: BreakGlassAccess | None  # the viewer's open emergency access, to end it from the banner
    problems: list[DiagnosisRow]  # active diagnoses of signed notes
    notes: list[ConsultNote]  # signed, and the viewer's own drafts
    referrals: list[TimelineItem]

    @property
    def break_glass_until(self) -> datetime | None:
        return self.break_glass.expires_at if self.break_glass is not None else None


def chart_may_be_opened_by(*, user: User, patient_id: int) -> bool:
    """Doctors only; not one's own chart (a doctor who is also a patient
    reads their record on the patient's pages). The record's own rules
    (``patient_can_be_seen_by``) come after, in ``patient_get_for_user``.
    One condition per line."""
    if UserRole.DOCTOR not in user_roles(user=user):
        return False
    if user.pk == patient_id:  # noqa: SIM103  # one rule per line
        return False
    return True


def chart_patient_get_for_user(*, user: User, patient_id: int) -> User:
    """The patient, for a doctor who may see their record; else "not found",
    audited (a clinic admin, a patient, even the patient themself)."""
    if not chart_may_be_opened_by(user=user, patient_id=patient_id):
        audit_access_denied(actor=user, object_type="patient_chart", object_id=patient_id)
        raise Http404
    return patient_get_for_user(user=user, patient_id=patient_id)


def age_on(*, born: date | None, today: date) -> int | None:
    if born is None:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _latest_per_kind(patient: User) -> list[Reading]:
    """The newest reading of each kind, in one query: a subquery per kind,
    each one step down the (patient, kind, time) index, whatever the
    number of readings."""
    newest = Q()
    for code in KINDS:
        latest = Reading.objects.filter(patient=patient, kind=code).order_by("-measured_at", "-id").values("pk")[:1]
        newest |= Q(pk=Subquery(latest))
    by_kind = {reading.kind: reading for reading in Reading.objects.filter(newest)}
    return [by_kind[code] for code in KINDS if code in by_kind]


def _targets(patient: User, glucose_unit: str) -> list[TargetRow]:
    rows = PatientTarget.objects.filter(patient=patient).select_related("set_by").order_by("kind", "field")
    result = []
    for target in rows:
        kind = KINDS.get(target.kind)
        if kind is None:
            continue
        try:
            value_field = kind.field(target.field)
        except KeyError:
            continue
        low, high, unit = target.low, target.high, str(value_field.unit_label)
        if kind is GLUCOSE:
            unit = glucose_unit
            low = glucose_display(low, glucose_unit) if low is not None else None
            high = glucose_display(high, glucose_unit) if high is not None else None
        result.append(
            TargetRow(
                kind=target.kind,
                field=target.field,
                label=f"{kind.label}: {value_field.label}",
                low=low,
                high=high,
                unit=unit,
                set_by=target.set_by.full_name,
                updated_at=target.updated_at,
            )
        )
    return result


def patient_chart_get_for_user(*, user: User, patient_id: int) -> PatientChart:
    """The chart of ``patient_id`` for ``user``, audited as one view of the
    record; "not found" (audited) for anyone who may not see it."""
    patient = chart_patient_get_for_user(user=user, patient_id=patient_id)
    # The chart, its problem list and its notes: three view events, written
    # together (access to the record is checked above, once).
    audit_record_many(
        actor=user,
        entries=[
            AuditEntry(AuditAction.VIEW, object_type, patient.pk, patient=patient)
            for object_type in ("patient_chart", "problem_list", "consult_notes")
        ],
    )
    now = timezone.now()
    glucose_unit = glucose_unit_for(user=user)
    profile = PatientProfile.objects.get(user=patient)
    consent = Consent.objects.filter(patient=patient, kind=ConsentKind.HEALTH_DATA, withdrawn_at__isnull=True).first()
    ecgs = list(
        EcgRecording.objects.filter(patient=patient)
        .defer("failure_messages")
        .order_by("-created_at", "-id")[: SECTION_LIMIT + 1]
    )
    appointments = Appointment.objects.filter(patient=patient).select_related("doctor", "clinic")
    upcoming = list(
        appointments.filter(ends_at__gt=now, status=AppointmentStatus.BOOKED).order_by("starts_at", "id")[
            :SECTION_LIMIT
        ]
    )
    upcoming_ids = [appointment.pk for appointment in upcoming]
    past = list(
        appointments.filter(starts_at__lte=now)
        .exclude(pk__in=upcoming_ids)
        .order_by("-starts_at", "-id")[: SECTION_LIMIT + 1]
    )
    latest = _latest_per_kind(patient)
    access = patient_access_reason(user=user, patient=patient)
    return PatientChart(
        patient=patient,
        profile=profile,
        age_years=age_on(born=profile.date_of_birth, today=timezone.localdate(now)),
        consent=consent,
        consent_current=consent is not None and consent.version == settings.HEALTH_DATA_CONSENT_VERSION,
        latest_readings=[(reading, reading_values_display(reading, glucose_unit=glucose_unit)) for reading in latest],
        open_alerts=list(
            Alert.objects.filter(patient=patient, status=AlertStatus.OPEN)
            .select_related("reading", "ecg_recording")
            .order_by("-created_at", "-id")[:SECTION_LIMIT]
        ),
        trend_alerts=_trend_alerts(patient, now),
        targets=_targets(patient, glucose_unit),
        ecgs=ecgs[:SECTION_LIMIT],
        ecgs_more=len(ecgs) > SECTION_LIMIT,
        upcoming=upcoming,
        past=past[:SECTION_LIMIT],
        past_more=len(past) > SECTION_LIMIT,
        timeline=_timeline(
            TimelineQuery(
                patient=patient, viewer=user, cursor=None, limit=TIMELINE_PAGE, now=now, glucose_unit=glucose_unit
            )
        ),
        glucose_unit=glucose_unit,
        access=access,
        break_glass=break_glass_active_for(doctor=user, patient=patient)
        if access and access.code == "break_glass"
        else None,
        problems=problem_list(patient=patient, language=get_language()),
        notes=notes_readable(user=user, patient=patient, limit=SECTION_LIMIT),
        referrals=[
            referral_item(referral, viewer=user) for referral in referrals_of_patient(patient=patient)[:SECTION_LIMIT]
        ],
    )
