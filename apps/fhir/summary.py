"""The patient's record as a readable page: what the summary template
shows, in the viewer's language and units (pure; no queries beyond the
record's own)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from apps.accounts.models import Language, Sex
from apps.care.models import Diagnosis
from apps.fhir.selectors import PatientRecord
from apps.scheduling.models import Appointment
from apps.vitals.display import kind_label, reading_values_display
from apps.vitals.ecg_display import ecg_summary_display
from apps.vitals.kinds import KINDS
from apps.vitals.models import EcgRecording, Reading
from apps.vitals.selectors import glucose_unit_for

READINGS_PER_KIND = 10


@dataclass
class KindSummary:
    code: str
    label: str
    count: int = 0
    rows: list[tuple[Reading, str]] = field(default_factory=list)  # the latest, with their values as text


@dataclass
class RecordSummary:
    patient: Any
    profile: Any
    sex: str
    language: str
    conditions: list[Diagnosis]
    kinds: list[KindSummary]
    recordings: list[tuple[EcgRecording, Any]]
    upcoming: list[Appointment]
    past: list[Appointment]
    generated_at: datetime
    readings_per_kind: int = READINGS_PER_KIND


def record_summary(record: PatientRecord, *, now: datetime) -> RecordSummary:
    glucose_unit = glucose_unit_for(user=record.patient)
    by_kind: dict[str, KindSummary] = {}
    counts: dict[str, int] = defaultdict(int)
    for reading in record.readings:  # newest first
        counts[reading.kind] += 1
        summary = by_kind.setdefault(reading.kind, KindSummary(code=reading.kind, label=kind_label(reading.kind)))
        if len(summary.rows) < READINGS_PER_KIND:
            summary.rows.append((reading, reading_values_display(reading, glucose_unit=glucose_unit)))
    for code, summary in by_kind.items():
        summary.count = counts[code]
    kinds = [by_kind[code] for code in KINDS if code in by_kind]
    upcoming = [a for a in record.appointments if a.starts_at >= now and a.status == "booked"]
    past = [a for a in record.appointments if a not in upcoming]
    upcoming.reverse()  # soonest first
    profile = record.profile
    return RecordSummary(
        patient=record.patient,
        profile=profile,
        sex=str(Sex(profile.sex).label) if profile.sex in Sex.values else "",
        language=dict(Language.choices).get(record.patient.language, record.patient.language),
        conditions=record.conditions,
        kinds=kinds,
        recordings=[(r, ecg_summary_display(r) if r.status == "done" else None) for r in record.recordings],
        upcoming=upcoming,
        past=past,
        generated_at=now,
    )
