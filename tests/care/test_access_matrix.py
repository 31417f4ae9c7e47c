"""The access matrix of the doctor workspace (issue 7): every URL of the
``care``, ``fhir`` and ``audit`` namespaces, built for Alice's records (her
chart, her draft and signed notes, their diagnoses, her reading, ECG and
alert, her care team, the break-glass on her record, her referrals, her
FHIR resources), requested by each of these people, with the answer
DESIGN.md expects:

- ``alice``, the patient; ``bob``, her doctor (appointments, the notes'
  author); ``dave``, a doctor of her clinic with no relation to her;
  ``erin``, a doctor of another clinic; ``carol``, the admin of her
  clinic; ``mallory``, a patient with no right to anything of hers;
  ``anon``, nobody signed in;
- ``glass``, a doctor of her clinic who opened break-glass on her record;
  ``team``, a doctor on her care team; ``referred``, a doctor of another
  clinic Bob referred her to; ``oscar``, the admin of that other clinic;
- ``former``, a doctor of her clinic whose every tie to her has ended (a
  cancelled appointment, a declined referral, a care-team membership that
  ended, a break-glass he closed), answered as Dave; ``specialist``, a
  cardiologist of the other clinic while Bob's referral of Alice to
  cardiology waits for one of them (he sees that referral and may accept
  it, not her record), answered as Erin for everything else.

A record the caller may not see is 404 (never 403); anonymous visitors are
sent to sign in (the FHIR API answers 401); a method a view does not take
may answer 405 (or 404 for a caller without the role): that tells nothing.
Every refusal writes nothing (a fingerprint of every row of the care,
vitals, scheduling, consults and notifications tables, and of the
patients' profiles and consents, before and after), and every read of
Alice's health data that is allowed is audited with her as the patient.
Whatever the status, no answer shows Bob's draft note to anyone else, nor
the assessment of his signed note to anyone who may not read notes (Alice
herself reads only its plan, on her appointment page), nor her crisis
reading to anyone who may not see her record.

The data is built once for the module (``world``); each test runs in a
savepoint rolled back after it, so a POST that succeeds (a note saved, a
referral declined) does not leak into the next test. A new URL name in one
of the namespaces fails ``test_it_covers_every_url`` until it is added to
the matrix."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.db.models import Model
from django.test import Client, override_settings
from django.urls import get_resolver, reverse
from django.utils import timezone

from apps.accounts.models import Consent, PatientProfile, User
from apps.accounts.services import consent_give
from apps.accounts.tokens import token_create
from apps.audit.models import AuditAction, AuditEvent
from apps.care.models import BreakGlassAccess, CareTeamMembership, ConsultNote, Diagnosis, Referral
from apps.care.services import (
    break_glass_end,
    break_glass_open,
    care_team_add,
    care_team_remove,
    referral_create,
    referral_decline,
)
from apps.care.services_notes import consult_note_start, diagnosis_add
from apps.clinics.models import Clinic
from apps.scheduling.models import Appointment, AppointmentStatus
from apps.vitals.models import Alert, EcgRecording, Reading
from apps.vitals.services_ecg import ecg_recording_analyse, ecg_recording_upload
from tests.care.helpers import appointment_between
from tests.care.notes_support import COMPLETE, fill, signed
from tests.factories import ClinicFactory, PatientFactory, SpecialtyFactory, make_clinic_admin, make_doctor
from tests.fhir.test_observation_create import bp
from tests.vitals.conftest import CRISIS, record
from tests.vitals.ecg_support import regular_rhythm, synthetic_ecg

pytestmark = pytest.mark.sqlite

COLUMNS = ("alice", "bob", "dave", "erin", "carol", "mallory", "anon", "glass", "team", "referred", "oscar")
# The people a row does not name are answered as someone it does, unless a case says otherwise.
AS = {"former": "dave", "specialist": "erin"}
PEOPLE = (*COLUMNS, *AS)
# Those who have no relation to Alice: her name is on none of their own pages.
OUTSIDERS = ("dave", "erin", "mallory", "oscar", "former")
NAMESPACES = ("care", "fhir", "audit")
ALICE_NAME = "Alice Matrixova"
ALICE_PHONE = "+8613800138000"
# The tables whose rows a refusal must leave as they were.
WATCHED_APPS = ("care", "vitals", "scheduling", "consults", "notifications")
WATCHED_MODELS = (PatientProfile, Consent)
FHIR_JSON = "application/fhir+json"
# Bob's draft (its text and its diagnosis) is his alone until he signs it.
DRAFT_TEXT = {"assessment": "Unsigned draft: query unstable angina", "subjective": "Unsigned draft: chest pain"}
DRAFT_MARKERS = ("Unsigned draft", "E11.9")
# The clinical part of a signed note: the doctors who see her record read it; not she, not an admin.
SIGNED_ASSESSMENT = COMPLETE["assessment"]
NOTE_READERS = ("bob", "glass", "team", "referred")
# Her crisis reading, as pages show it: for her and the doctors who see her record only.
READING_SHOWN = f"{CRISIS['systolic']}/{CRISIS['diastolic']}"
RECORD_READERS = ("alice", *NOTE_READERS)


@dataclass(frozen=True)
class World:
    people: dict[str, User]
    clinic: Clinic
    other_clinic: Clinic
    signed_appointment: Appointment  # completed, with a signed note (an Encounter)
    draft_appointment: Appointment  # past, with a draft note
    new_appointment: Appointment  # upcoming, no note yet
    signed_note: ConsultNote
    draft_note: ConsultNote
    signed_diagnosis: Diagnosis
    draft_diagnosis: Diagnosis
    reading: Reading
    recording: EcgRecording  # analysed
    alert: Alert
    membership: CareTeamMembership  # team's
    glass_access: BreakGlassAccess  # glass's
    referral: Referral  # bob -> referred, open
    specialty_referral: Referral  # bob -> cardiology, open, nobody has taken it
    tokens: dict[str, str]  # personal access tokens, for FHIR
    baseline: list[Any] = field(default_factory=list)  # _fingerprint() of the world as built

    @property
    def alice(self) -> User:
        return self.people["alice"]


def _build() -> World:
    clinic = ClinicFactory(name="Hillside Clinic")
    other_clinic = ClinicFactory(name="Riverside Clinic")
    alice = PatientFactory(full_name=ALICE_NAME, email="alice@example.org", phone=ALICE_PHONE, phone_verified=True)
    consent_give(patient=alice, given_by=alice)
    mallory = PatientFactory(full_name="Mallory", email="mallory@example.org")
    consent_give(patient=mallory, given_by=mallory)  # a patient like any other, in the app
    people = {
        "alice": alice,
        "bob": make_doctor(clinic=clinic, full_name="Bob", email="bob@example.org"),
        "dave": make_doctor(clinic=clinic, full_name="Dave", email="dave@example.org"),
        "erin": make_doctor(clinic=other_clinic, full_name="Erin", email="erin@example.org"),
        "carol": make_clinic_admin(clinic=clinic, full_name="Carol", email="carol@example.org"),
        "mallory": mallory,
        "glass": make_doctor(clinic=clinic, full_name="Gwen", email="gwen@example.org"),
        "team": make_doctor(clinic=clinic, full_name="Tess", email="tess@example.org"),
        "referred": make_doctor(clinic=other_clinic, full_name="Rita", email="rita@example.org"),
        "oscar": make_clinic_admin(clinic=other_clinic, full_name="Oscar", email="oscar@example.org"),
        "former": make_doctor(clinic=clinic, full_name="Fred", email="fred@example.org"),
        "specialist": make_doctor(clinic=other_clinic, full_name="Sam", email="sam@example.org"),
    }
    bob = people["bob"]
    cardiology = SpecialtyFactory(code="cardiology", name_en="Cardiology", name_zh_hans="心内科")
    people["specialist"].doctor_profile.specialties.add(cardiology)
    signed_appointment = appointment_between(
        patient=alice, doctor=bob, clinic=clinic, days=-2, status=AppointmentStatus.COMPLETED
    )
    draft_appointment = appointment_between(patient=alice, doctor=bob, clinic=clinic, days=-0.5)
    new_appointment = appointment_between(patient=alice, doctor=bob, clinic=clinic, days=3)
    _former_ties(alice=alice, bob=bob, former=people["former"], clinic=clinic)
    reading = record(alice, values=CRISIS, measured_at=timezone.now() - timedelta(minutes=30)).reading
    ecg = synthetic_ecg(regular_rhythm(70, 30))
    recording = ecg_recording_upload(
        patient=alice, by=alice, file=SimpleUploadedFile("ecg.csv", ecg), name="ecg.csv"
    ).recording
    ecg_recording_analyse(recording_id=recording.pk)
    signed_note = signed(consult_note_start(appointment=signed_appointment, by=bob), bob, code="I10")
    draft_note = fill(consult_note_start(appointment=draft_appointment, by=bob), bob, **DRAFT_TEXT)
    draft_diagnosis = diagnosis_add(note=draft_note, by=bob, code="E11.9")
    draft_note.refresh_from_db()
    membership = care_team_add(patient=alice, doctor=people["team"], clinic=clinic, by=bob)
    glass_access = break_glass_open(
        doctor=people["glass"], patient=alice, reason="Brought in unconscious, no relative to ask"
    )
    referral = referral_create(
        patient=alice, from_doctor=bob, to_doctor=people["referred"], reason="Murmur: an echocardiogram, please"
    )
    specialty_referral = referral_create(
        patient=alice, from_doctor=bob, to_specialty=cardiology, reason="Palpitations: a Holter, please"
    )
    tokens = {name: token_create(user=user, name="fhir", expires_in_days=1)[1] for name, user in people.items()}
    return World(
        people=people,
        clinic=clinic,
        other_clinic=other_clinic,
        signed_appointment=signed_appointment,
        draft_appointment=draft_appointment,
        new_appointment=new_appointment,
        signed_note=signed_note,
        draft_note=draft_note,
        signed_diagnosis=Diagnosis.objects.get(note=signed_note),
        draft_diagnosis=draft_diagnosis,
        reading=reading,
        recording=recording,
        alert=Alert.objects.get(reading=reading),
        membership=membership,
        glass_access=glass_access,
        referral=referral,
        specialty_referral=specialty_referral,
        tokens=tokens,
    )


def _former_ties(*, alice: User, bob: User, former: User, clinic: Clinic) -> None:
    """Every way Fred could have seen Alice's record, each one over."""
    appointment_between(patient=alice, doctor=former, clinic=clinic, days=-10, status=AppointmentStatus.CANCELLED)
    referral = referral_create(patient=alice, from_doctor=bob, to_doctor=former, reason="Second opinion")
    referral_decline(referral=referral, by=former, reason="Away for a month")
    care_team_remove(membership=care_team_add(patient=alice, doctor=former, clinic=clinic, by=bob), by=bob)
    access = break_glass_open(doctor=former, patient=alice, reason="Fainted in the waiting room, alone")
    break_glass_end(access=access, by=former)


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Built once, in a transaction rolled back when the module ends; each
    test's own transaction is a savepoint inside it. The ECG's original is
    kept in a private folder of the module's own."""
    storages = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path_factory.mktemp("private")},
        },
    }
    with override_settings(STORAGES=storages), django_db_blocker.unblock(), transaction.atomic():
        built = _build()
        yield replace(built, baseline=_fingerprint())
        transaction.set_rollback(True)


# --- The matrix ------------------------------------------------------------------------

Args = Callable[[World], list[Any]]
Data = Callable[[World], dict[str, Any]]


@dataclass(frozen=True)
class Case:
    """One URL name for one of Alice's records (``target``), and per person
    (in the order of PEOPLE) the status expected for GET and for POST; None:
    the view does not take that method."""

    name: str  # "<namespace>:<url name>"
    target: str
    args: Args
    get: str | None
    post: str | None = None
    data: Data | None = None  # the POST's form (or FHIR JSON body)
    query: Data | None = None  # the GET's query string
    audited: bool = False  # a 200 GET by someone else than Alice is a read of her record, audited
    own: bool = False  # the caller's own page: outsiders see nothing of Alice
    public: bool = False  # open to anyone, signed in or not
    hidden_from: tuple[str, ...] = OUTSIDERS  # with ``own``: whose page never names Alice

    @property
    def id(self) -> str:
        return f"{self.name}[{self.target}]"

    @property
    def api(self) -> bool:
        return self.name.startswith("fhir:") and self.name not in ("fhir:export", "fhir:summary")

    def expected(self, method: str, person: str) -> str | None:
        row = self.get if method == "get" else self.post
        return None if row is None else _cells(row)[PEOPLE.index(person)]


def _none(w: World) -> list[Any]:
    return []


def _alice(w: World) -> list[Any]:
    return [w.alice.pk]


def _note_fields(note: Callable[[World], ConsultNote]) -> Data:
    def data(w: World) -> dict[str, Any]:
        fields = {key: value for key, value in COMPLETE.items() if key != "follow_up_after_days"}
        return {"action": "save", **fields, "follow_up_after_days": 14, "version": note(w).version}

    return data


def _draft(w: World) -> ConsultNote:
    return w.draft_note


def _signed(w: World) -> ConsultNote:
    return w.signed_note


def _patient_query(w: World) -> dict[str, Any]:
    return {"patient": w.alice.pk}


def _observation(w: World) -> dict[str, Any]:
    return bp(w.alice, effectiveDateTime=(timezone.now() - timedelta(minutes=5)).isoformat())


def _bundle(w: World) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": _observation(w), "request": {"method": "POST", "url": "Observation"}}],
    }


# Columns:        alice bob dave erin carol mallory anon glass team referred oscar
DOCTORS_OWN = "    404   200 200  200  404   404     302  200   200  200      404"
PATIENTS_OWN = "   200   404 404  404  404   200     302  404   404  404      404"
CHART = "          404   200 404  404  404   404     302  200   200  200      404"
CHART_WRITE = "    404   302 404  404  404   404     302  302   302  302      404"
AUTHOR = "         404   200 404  404  404   404     302  404   404  404      404"
AUTHOR_WRITE = "   404   302 404  404  404   404     302  404   404  404      404"
REFERRAL_ACT = "   404   302 404  404  404   404     302  404   404  302      404"
CLINIC_ADMIN = "   404   404 404  404  200   404     302  404   404  404      404"
FHIR_READ = "      200   200 404  404  404   404     401  200   200  200      404"
EVERYONE = "       200   200 200  200  200   200     200  200   200  200      200"


def _cells(row: str) -> list[str]:
    """A row's statuses in the order of PEOPLE: those AS names, copied when the row leaves them out."""
    cells = row.split()
    if len(cells) == len(COLUMNS):
        cells += [cells[COLUMNS.index(like)] for like in AS.values()]
    assert len(cells) == len(PEOPLE), row
    return cells


def _with(row: str, **changes: str) -> str:
    """``row`` with some people's statuses changed (and of those answered as them, unless named too)."""
    cells = _cells(row)
    for person, like in AS.items():
        if like in changes and person not in changes:
            changes[person] = changes[like]
    for person, status in changes.items():
        cells[PEOPLE.index(person)] = status
    return " ".join(cells)


SPECIALTY_ACT = _with(REFERRAL_ACT, referred="404", specialist="302")

CASES: list[Case] = [
    # The chart.
    Case("care:chart", "alice", _alice, get=CHART, audited=True),
    Case("care:chart_timeline", "alice", _alice, get=CHART, audited=True),
    Case(
        "care:chart_targets",
        "alice",
        _alice,
        get=None,
        post=CHART_WRITE,
        data=lambda w: {"value": "blood_pressure.systolic", "high": "130"},
    ),
    # The dashboard and "My patients": the doctor's own.
    Case("care:dashboard", "own", _none, get=DOCTORS_OWN, own=True),
    Case("care:triage", "own", _none, get=DOCTORS_OWN, own=True),
    Case("care:today", "own", _none, get=DOCTORS_OWN, own=True),
    # Break-glass patients are reachable, never listed as "my patients".
    Case(
        "care:patients",
        "own",
        _none,
        get=DOCTORS_OWN,
        own=True,
        query=lambda w: {"q": "Alice"},
        hidden_from=(*OUTSIDERS, "glass"),
    ),
    Case(
        "care:alert_acknowledge",
        "alice's alert",
        lambda w: [w.alert.pk],
        get=None,
        post=CHART_WRITE,
        data=lambda w: {"note": "Called her: she is resting."},
    ),
    Case(
        "care:patient_message",
        "alice",
        _alice,
        get=CHART,
        post=CHART_WRITE,
        data=lambda w: {"text": "Please call the clinic today.", "token": "matrix1"},
    ),
    # Without a free time chosen the booking page shows the doctor's free times again.
    Case("care:patient_book", "alice", _alice, get=CHART, post=CHART, data=lambda w: {"clinic": w.clinic.pk}),
    # Consult notes: the author writes; doctors who see her record read signed notes.
    Case(
        "care:note_editor",
        "draft note's appointment",
        lambda w: [w.draft_appointment.pk],
        get=AUTHOR,
        post=AUTHOR_WRITE,
        data=_note_fields(_draft),
    ),
    Case(
        "care:note_editor",
        "signed note's appointment",
        lambda w: [w.signed_appointment.pk],
        get=AUTHOR,
        post=_with(AUTHOR, bob="409"),
        data=_note_fields(_signed),
    ),
    Case(
        "care:note_editor",
        "appointment without a note",
        lambda w: [w.new_appointment.pk],
        get=AUTHOR,
        post=AUTHOR_WRITE,
        data=lambda w: {"action": "start"},
    ),
    Case("care:note", "draft", lambda w: [w.draft_note.pk], get=_with(AUTHOR, bob="302")),
    Case("care:note", "signed", lambda w: [w.signed_note.pk], get=_with(CHART, bob="302"), audited=True),
    Case(
        "care:note_autosave",
        "draft",
        lambda w: [w.draft_note.pk],
        get=None,
        post=AUTHOR,
        data=_note_fields(_draft),
    ),
    Case(
        "care:note_autosave",
        "signed",
        lambda w: [w.signed_note.pk],
        get=None,
        post=_with(AUTHOR, bob="409"),
        data=_note_fields(_signed),
    ),
    Case(
        "care:note_diagnosis_add",
        "draft",
        lambda w: [w.draft_note.pk],
        get=None,
        post=AUTHOR_WRITE,
        data=lambda w: {"code": "E66.3"},
    ),
    Case(
        "care:note_diagnosis_add",
        "signed",
        lambda w: [w.signed_note.pk],
        get=None,
        post=_with(AUTHOR, bob="400"),
        data=lambda w: {"code": "E66.3"},
    ),
    Case(
        "care:note_diagnosis_remove",
        "draft",
        lambda w: [w.draft_note.pk, w.draft_diagnosis.pk],
        get=None,
        post=AUTHOR_WRITE,
    ),
    # Refused by the service (signed notes don't change): back to the note with the reason.
    Case(
        "care:note_diagnosis_remove",
        "signed",
        lambda w: [w.signed_note.pk, w.signed_diagnosis.pk],
        get=None,
        post=AUTHOR_WRITE,
    ),
    Case(
        "care:note_addendum",
        "signed",
        lambda w: [w.signed_note.pk],
        get=None,
        post=AUTHOR_WRITE,
        data=lambda w: {"text": "Correction: the reading was taken after a walk."},
    ),
    Case(
        "care:note_addendum",
        "draft",
        lambda w: [w.draft_note.pk],
        get=None,
        post=_with(AUTHOR, bob="400"),
        data=lambda w: {"text": "Correction: the reading was taken after a walk."},
    ),
    # Without a time chosen: the free times again, with the reason.
    Case("care:note_follow_up", "signed", lambda w: [w.signed_note.pk], get=AUTHOR, post=_with(AUTHOR, bob="400")),
    Case("care:note_follow_up", "draft", lambda w: [w.draft_note.pk], get=AUTHOR, post=_with(AUTHOR, bob="400")),
    Case("care:problem_resolve", "signed diagnosis", lambda w: [w.signed_diagnosis.pk], get=None, post=CHART_WRITE),
    Case("care:icd10_search", "none", _none, get=DOCTORS_OWN, query=lambda w: {"q": "hypertension"}),
    # Care team: her doctors (not through break-glass) at their clinics, and the admin of her clinic.
    Case(
        "care:care_team",
        "alice",
        _alice,
        get=_with(CHART, carol="200", glass="404"),
        # Rita may change the team at her own clinic only: the form for Hillside is invalid.
        post=_with(CHART_WRITE, carol="302", glass="404", referred="200"),
        data=lambda w: {"clinic": w.clinic.pk, "doctor": w.people["dave"].pk},
        audited=True,
    ),
    Case(
        "care:care_team_remove",
        "team's membership",
        lambda w: [w.membership.pk],
        get=None,
        post=_with(CHART_WRITE, carol="302", glass="404", referred="404"),
    ),
    # Break-glass: any doctor may open it, with a reason (those who see her already go to her chart).
    Case(
        "care:break_glass",
        "own",
        _none,
        get=DOCTORS_OWN,
        post=_with(DOCTORS_OWN, bob="302", dave="302", erin="302", glass="302", team="302", referred="302"),
        data=lambda w: {"patient": ALICE_PHONE, "reason": "Collapsed at the clinic door, unresponsive"},
    ),
    Case(
        "care:break_glass_end",
        "glass's access",
        lambda w: [w.glass_access.pk],
        get=None,
        post=_with(AUTHOR, bob="404", glass="302"),
    ),
    Case("care:break_glass_clinic", "her clinic", lambda w: [w.clinic.pk], get=CLINIC_ADMIN),
    # Referrals.
    Case(
        "care:referral_new",
        "alice",
        _alice,
        get=CHART,
        post=CHART_WRITE,
        data=lambda w: {"to_doctor": w.people["dave"].pk, "urgency": "routine", "reason": "Second opinion"},
    ),
    Case("care:referrals", "own", _none, get=DOCTORS_OWN, own=True),
    Case("care:my_referrals", "own", _none, get=PATIENTS_OWN, own=True),
    Case(
        "care:referral_detail",
        "bob to referred",
        lambda w: [w.referral.pk],
        get=_with(CHART, alice="200", glass="404", team="404"),
        audited=True,
    ),
    Case("care:referral_accept", "bob to referred", lambda w: [w.referral.pk], get=None, post=REFERRAL_ACT),
    Case(
        "care:referral_decline",
        "bob to referred",
        lambda w: [w.referral.pk],
        get=None,
        post=REFERRAL_ACT,
        data=lambda w: {"reason": "Not my field"},
    ),
    Case("care:referral_complete", "bob to referred", lambda w: [w.referral.pk], get=None, post=REFERRAL_ACT),
    Case("care:referral_cancel", "bob to referred", lambda w: [w.referral.pk], get=None, post=REFERRAL_ACT),
    # A referral to cardiology nobody has taken: its cardiologists see it (not her record) and may take it.
    Case(
        "care:referral_detail",
        "bob to cardiology",
        lambda w: [w.specialty_referral.pk],
        get=_with(CHART, alice="200", glass="404", team="404", referred="404", specialist="200"),
        audited=True,
    ),
    *(
        Case(
            name,
            "bob to cardiology",
            lambda w: [w.specialty_referral.pk],
            get=None,
            post=SPECIALTY_ACT,
            data=lambda w: {"reason": "Not my field"},
        )
        for name in ("care:referral_accept", "care:referral_decline", "care:referral_complete", "care:referral_cancel")
    ),
    # The audit log: the admins of the clinic.
    Case("audit:clinic_log", "her clinic", lambda w: [w.clinic.pk], get=CLINIC_ADMIN),
    # FHIR: the same rules, anonymous callers get 401.
    Case("fhir:metadata", "none", _none, get=EVERYONE, public=True),
    Case(
        "fhir:root",
        "transaction bundle",
        _none,
        get=None,
        post=_with(FHIR_READ, carol="200"),
        data=_bundle,
    ),
    Case(
        "fhir:observations",
        "alice",
        _none,
        get=FHIR_READ,
        query=_patient_query,
        post=_with(FHIR_READ, alice="201", bob="201", carol="201", glass="201", team="201", referred="201"),
        data=_observation,
        audited=True,
    ),
    Case("fhir:observation", "alice's reading", lambda w: [f"reading-{w.reading.pk}"], get=FHIR_READ, audited=True),
    Case("fhir:observation", "alice's ECG", lambda w: [f"ecg-{w.recording.pk}"], get=FHIR_READ, audited=True),
    Case("fhir:patient", "alice", _alice, get=FHIR_READ, audited=True),
    Case("fhir:everything", "alice", _alice, get=FHIR_READ, audited=True),
    Case("fhir:appointments", "alice", _none, get=FHIR_READ, query=_patient_query, audited=True),
    Case("fhir:appointment", "signed", lambda w: [w.signed_appointment.pk], get=FHIR_READ, audited=True),
    Case("fhir:encounters", "alice", _none, get=FHIR_READ, query=_patient_query, audited=True),
    Case("fhir:encounter", "signed", lambda w: [w.signed_appointment.pk], get=FHIR_READ, audited=True),
    Case("fhir:conditions", "alice", _none, get=FHIR_READ, query=_patient_query, audited=True),
    Case("fhir:condition", "signed diagnosis", lambda w: [w.signed_diagnosis.pk], get=FHIR_READ, audited=True),
    # The patient's own record: pages (a session), not the API.
    Case("fhir:export", "own", _none, get=PATIENTS_OWN, own=True),
    Case("fhir:summary", "own", _none, get=PATIENTS_OWN, own=True),
]
CASE_IDS = [case.id for case in CASES]
assert len(set(CASE_IDS)) == len(CASE_IDS)


def test_it_covers_every_url() -> None:
    resolver = get_resolver()
    names = {
        f"{namespace}:{name}"
        for namespace in NAMESPACES
        for name in resolver.namespace_dict[namespace][1].reverse_dict
        if isinstance(name, str)
    }
    assert names == {case.name for case in CASES}


def test_it_has_a_well_formed_table() -> None:
    for case in CASES:
        for row in (case.get, case.post):
            assert row is None or len(_cells(row)) == len(PEOPLE), case.id


# --- Requests ---------------------------------------------------------------------------


def _watched() -> list[type[Model]]:
    return [*(m for label in WATCHED_APPS for m in apps.get_app_config(label).get_models()), *WATCHED_MODELS]


def _fingerprint() -> list[Any]:
    """Every row of the watched tables (small: this module's data)."""
    return [(model.__name__, list(model._default_manager.order_by("pk").values_list())) for model in _watched()]


def _client(person: str, world: World, *, token: bool) -> tuple[Client, dict[str, Any]]:
    client = Client()
    if person == "anon":
        return client, {}
    if token:
        return client, {"HTTP_AUTHORIZATION": f"Bearer {world.tokens[person]}"}
    client.force_login(world.people[person])
    return client, {}


def _request(case: Case, method: str, client: Client, world: World, headers: dict[str, Any]) -> Any:
    url = reverse(case.name, args=case.args(world))
    if case.api:
        headers = {**headers, "HTTP_ACCEPT": FHIR_JSON}
        if method == "get":
            return client.get(url, case.query(world) if case.query else {}, **headers)
        body = json.dumps(case.data(world) if case.data else {})
        return client.post(url, body, content_type=FHIR_JSON, **headers)
    if method == "get":
        return client.get(url, case.query(world) if case.query else {}, **headers)
    return client.post(url, case.data(world) if case.data else {}, **headers)


def _refusal(status: int, person: str) -> bool:
    return status in (401, 403, 404, 405) or (person == "anon" and status == 302)


def _body(response: Any) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return content.decode("utf-8", "replace")


def _check(case: Case, person: str, world: World, *, token: bool) -> list[str]:
    """Both methods for one person; the mismatches, as readable lines."""
    client, headers = _client(person, world, token=token)
    problems: list[str] = []
    before = world.baseline  # each test starts from the world as built
    for method in ("get", "post"):
        expected = case.expected(method, person)
        audit_before = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        response = _request(case, method, client, world, headers)
        after = _fingerprint()
        status = response.status_code
        where = f"{case.id} {method.upper()} as {person}{' (token)' if token else ''}"
        if expected is None:  # the view does not take this method
            allowed = {"404", "405"}
            if person == "anon" and not case.public:
                allowed = {"401"} if case.api else {"302"}
            if str(status) not in allowed:
                problems.append(f"{where}: {status}, expected one of {sorted(allowed)}")
        elif str(status) != expected:
            problems.append(f"{where}: {status}, expected {expected}")
        if person == "anon" and status == 302 and not response["Location"].startswith(reverse("account_login")):
            problems.append(f"{where}: sent to {response['Location']}, not to sign in")
        if _refusal(status, person) and after != before:
            problems.append(f"{where}: refused ({status}) but something was written")
        if status == 200 and method == "get" and case.audited and person != "alice":
            reads = AuditEvent.objects.filter(
                pk__gt=audit_before,
                actor=world.people[person],
                patient=world.alice,
                action__in=(AuditAction.VIEW, AuditAction.EXPORT),
            )
            if not reads.exists():
                problems.append(f"{where}: a read of Alice's record that was not audited")
        body = _body(response)
        if status == 200 and case.own and person in case.hidden_from and ALICE_NAME in body:
            problems.append(f"{where}: shows Alice to {person}")
        if person != "bob" and any(marker in body for marker in DRAFT_MARKERS):
            problems.append(f"{where}: shows Bob's draft note to {person}")
        if person not in NOTE_READERS and SIGNED_ASSESSMENT in body:
            problems.append(f"{where}: shows the signed note's assessment to {person}")
        if person not in RECORD_READERS and READING_SHOWN in body:
            problems.append(f"{where}: shows Alice's reading to {person}")
        before = after
    return problems


@pytest.mark.parametrize("person", PEOPLE)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_it_answers_each_person_as_the_matrix_says(case: Case, person: str, world: World, db: None) -> None:
    problems = _check(case, person, world, token=False)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("person", PEOPLE)
@pytest.mark.parametrize("case", [c for c in CASES if c.api], ids=[c.id for c in CASES if c.api])
def test_it_answers_fhir_token_callers_as_the_matrix_says(case: Case, person: str, world: World, db: None) -> None:
    problems = _check(case, person, world, token=True)
    assert not problems, "\n".join(problems)


def _first_allowed_to_post(case: Case) -> str | None:
    for person in PEOPLE:
        expected = case.expected("post", person)
        if person != "anon" and expected is not None and not _refusal(int(expected), person):
            return person
    return None


POSTED = [(case, person) for case in CASES if (person := _first_allowed_to_post(case)) is not None]


@pytest.mark.parametrize(("case", "person"), POSTED, ids=[f"{case.id}-{person}" for case, person in POSTED])
def test_it_refuses_a_post_without_the_csrf_token(case: Case, person: str, world: World, db: None) -> None:
    """Someone the matrix lets POST, signed in, but without the CSRF token: refused, nothing written."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.people[person])
    response = _request(case, "post", client, world, {})
    assert response.status_code == 403, (case.id, person, response.status_code)
    assert _fingerprint() == world.baseline


def test_it_sees_a_write_in_the_fingerprint(world: World, db: None) -> None:
    """The refusals' "nothing written" means something: an allowed write shows."""
    client, _ = _client("bob", world, token=False)
    response = client.post(reverse("care:chart_targets", args=[world.alice.pk]), {"value": "blood_pressure.systolic"})
    assert response.status_code in (302, 400)
    response = client.post(
        reverse("care:chart_targets", args=[world.alice.pk]), {"value": "blood_pressure.systolic", "high": "130"}
    )
    assert response.status_code == 302
    assert _fingerprint() != world.baseline


def test_break_glass_opens_the_chart_audited_with_its_reason_until_it_is_ended(world: World, db: None) -> None:
    """Dave, who may not see Alice's chart, opens break-glass from the page
    with a reason: her chart opens (audited, with the banner), his clinic's
    admin sees the access and why; once he ends it, "not found" again."""
    dave = world.people["dave"]
    chart = reverse("care:chart", args=[world.alice.pk])
    client, _ = _client("dave", world, token=False)
    assert client.get(chart).status_code == 404
    reason = "Collapsed at the clinic door, unresponsive"
    response = client.post(reverse("care:break_glass"), {"patient": ALICE_PHONE, "reason": reason})
    assert response.status_code == 302
    assert response["Location"] == chart
    access = BreakGlassAccess.objects.get(doctor=dave, patient=world.alice, ended_at__isnull=True)
    assert AuditEvent.objects.filter(
        actor=dave, action=AuditAction.CREATE, object_type="break_glass", patient=world.alice, reason=reason
    ).exists()
    response = client.get(chart)
    assert response.status_code == 200
    assert "Break-glass access (emergency)." in _body(response)
    assert AuditEvent.objects.filter(
        actor=dave, action=AuditAction.VIEW, object_type="patient_chart", patient=world.alice
    ).exists()
    carol, _ = _client("carol", world, token=False)
    review = _body(carol.get(reverse("care:break_glass_clinic", args=[world.clinic.pk])))
    assert "Dave" in review and reason in review and ALICE_NAME in review
    assert client.post(reverse("care:break_glass_end", args=[access.pk])).status_code == 302
    assert client.get(chart).status_code == 404
