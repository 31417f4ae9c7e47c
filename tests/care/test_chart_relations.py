"""The chart through the care relations (referral, care team,
break-glass) and with the care records (notes, diagnoses, referrals): who
opens it, what it shows, the timeline, and the queries."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.care.models import (
    BreakGlassAccess,
    CareTeamMembership,
    ConsultNote,
    Diagnosis,
    DiagnosisStatus,
    NoteStatus,
    Referral,
    ReferralStatus,
)
from apps.clinics.models import Clinic
from apps.scheduling.models import Appointment, AppointmentStatus
from tests.care.test_chart import _book, _chart, _ecgs, _readings

pytestmark = pytest.mark.sqlite  # both databases: the per-kind subqueries, the keyset cursor

Login = Callable[[User], Client]


@pytest.fixture
def appointment(alice: User, bob: User, clinic: Clinic) -> Appointment:
    return _book(alice, bob, clinic, starts_in=-timedelta(days=2), status=AppointmentStatus.COMPLETED)


def _refer(alice: User, bob: User, to: User, **extra: object) -> Referral:
    return Referral.objects.create(
        patient=alice, from_doctor=bob, to_doctor=to, reason="Chest pain on exertion", urgency="soon", **extra
    )


def _note(
    appointment: Appointment,
    *,
    signed: bool = True,
    codes: tuple[str, ...] = ("I10",),
    recorded_at: datetime | None = None,
) -> ConsultNote:
    note = ConsultNote.objects.create(
        appointment=appointment,
        patient=appointment.patient,
        author=appointment.doctor,
        assessment="Essential hypertension, poorly controlled",
        plan="Amlodipine 5 mg",
    )
    for index, code in enumerate(codes):
        Diagnosis.objects.create(
            note=note, patient=appointment.patient, code=code, description=f"Diagnosis {code}", is_primary=index == 0
        )
    if recorded_at is not None:
        Diagnosis.objects.filter(note=note).update(recorded_at=recorded_at)
    if signed:
        note.status = NoteStatus.SIGNED
        note.signed_at = timezone.now()
        note.signed_by = appointment.doctor
        note.save()
    return note


# --- Who may open it through a care relation --------------------------------------------


@pytest.mark.usefixtures("appointment")
def test_a_doctor_with_an_open_referral_opens_the_chart(login: Login, alice: User, bob: User, erin: User) -> None:
    referral = _refer(alice, bob, erin)
    page = login(erin).get(_chart(alice)).content.decode()
    assert 'data-access-reason="referral"' in page
    referral.status = ReferralStatus.COMPLETED
    referral.closed_at = timezone.now()
    referral.save()
    assert login(erin).get(_chart(alice)).status_code == 404  # a closed referral gives no access


def test_a_care_team_member_opens_the_chart(login: Login, alice: User, bob: User, dave: User, clinic: Clinic) -> None:
    CareTeamMembership.objects.create(patient=alice, doctor=dave, clinic=clinic, added_by=bob)
    response = login(dave).get(_chart(alice))
    assert response.status_code == 200
    assert 'data-access-reason="care_team"' in response.content.decode()


def test_break_glass_opens_the_chart_with_a_banner_and_is_audited(
    login: Login, alice: User, dave: User, clinic: Clinic
) -> None:
    assert login(dave).get(_chart(alice)).status_code == 404
    until = timezone.now() + timedelta(hours=4)
    BreakGlassAccess.objects.create(
        doctor=dave, patient=alice, clinic=clinic, reason="Unconscious patient brought in by family", expires_at=until
    )
    response = login(dave).get(_chart(alice))
    assert response.status_code == 200
    page = response.content.decode()
    assert "data-break-glass" in page and 'data-access-reason="break_glass"' in page
    assert until.astimezone(zoneinfo.ZoneInfo(dave.timezone)).strftime("%Y-%m-%d %H:%M") in page  # in Dave's zone
    assert AuditEvent.objects.filter(actor=dave, action="view", object_type="patient_chart", patient=alice).exists()
    end = reverse("care:break_glass_end", args=[BreakGlassAccess.objects.get().pk])
    assert end in page
    login(dave).post(end)
    assert login(dave).get(_chart(alice)).status_code == 404  # ended from the banner


def test_an_expired_break_glass_gives_nothing(login: Login, alice: User, dave: User, clinic: Clinic) -> None:
    glass = BreakGlassAccess.objects.create(
        doctor=dave,
        patient=alice,
        clinic=clinic,
        reason="Unconscious patient brought in by family",
        expires_at=timezone.now() + timedelta(hours=1),
    )
    BreakGlassAccess.objects.filter(pk=glass.pk).update(
        created_at=timezone.now() - timedelta(hours=5), expires_at=timezone.now() - timedelta(hours=1)
    )
    assert login(dave).get(_chart(alice)).status_code == 404


@pytest.mark.usefixtures("appointment")
def test_bob_sees_his_appointment_as_the_reason(login: Login, alice: User, bob: User) -> None:
    page = login(bob).get(_chart(alice)).content.decode()
    assert 'data-access-reason="appointment"' in page
    assert "data-break-glass" not in page


# --- Notes, diagnoses, referrals -----------------------------------------------------------


def test_it_shows_the_problem_list_notes_and_referrals(
    login: Login, alice: User, bob: User, erin: User, appointment: Appointment
) -> None:
    _note(appointment, codes=("I10", "E11.9"))
    _refer(alice, bob, erin)
    page = login(bob).get(_chart(alice)).content.decode()
    problems = page.split("data-problem-list")[1].split("</ul>")[0]
    assert "I10" in problems and "E11.9" in problems
    assert "Essential hypertension" in page.split('id="notes-h"')[1]
    referrals = page.split('id="referrals-h"')[1]
    assert "Referred to Erin by Bob" in referrals
    assert reverse("care:referral_detail", args=[Referral.objects.get().pk]) in referrals  # Bob made it
    assert reverse("care:note", args=[ConsultNote.objects.get().pk]) in page
    for name in ("care:referral_new", "care:care_team", "care:patient_message"):
        assert reverse(name, args=[alice.pk]) in page


def test_drafts_stay_their_authors_and_resolved_diagnoses_leave_the_problem_list(
    login: Login, alice: User, bob: User, dave: User, clinic: Clinic, appointment: Appointment
) -> None:
    draft_visit = _book(alice, bob, clinic, starts_in=-timedelta(days=1), status=AppointmentStatus.COMPLETED)
    _note(draft_visit, signed=False, codes=("J45",))
    signed = _note(appointment, codes=("I10",))
    Diagnosis.objects.filter(note=signed).update(status=DiagnosisStatus.RESOLVED)
    CareTeamMembership.objects.create(patient=alice, doctor=dave, clinic=clinic, added_by=bob)
    bobs = login(bob).get(_chart(alice)).content.decode()
    assert bobs.count("data-note=") == 2  # his draft and the signed note
    assert "No active diagnosis." in bobs  # J45 is a draft's, I10 resolved
    daves = login(dave).get(_chart(alice)).content.decode()
    assert daves.count("data-note=") == 1  # not Bob's draft


def test_the_timeline_mixes_notes_diagnoses_and_referrals(
    login: Login, alice: User, bob: User, erin: User, appointment: Appointment
) -> None:
    now = timezone.now()
    _note(appointment, recorded_at=now - timedelta(days=2) + timedelta(minutes=20))
    referral = _refer(alice, bob, erin)
    Referral.objects.filter(pk=referral.pk).update(created_at=now - timedelta(hours=1))
    page = login(bob).get(_chart(alice)).content.decode()
    timeline = page.split("data-chart-timeline>")[1]
    kinds = [part.split('"')[1] for part in timeline.split("data-timeline-kind=")[1:]]
    assert kinds == ["referral", "diagnosis", "note", "appointment"]  # the note at the consult's time, after it


# --- Queries ----------------------------------------------------------------------------------


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as context:
        assert client.get(url).status_code == 200
    return len(context)


def test_the_chart_costs_the_same_queries_with_many_notes_and_referrals(
    login: Login, alice: User, bob: User, erin: User, clinic: Clinic
) -> None:
    client = login(bob)

    def grow(days: range) -> None:
        for day in days:
            visit = _book(alice, bob, clinic, starts_in=-timedelta(days=day), status=AppointmentStatus.COMPLETED)
            _note(visit, codes=(f"I{10 + day % 5}", f"E{day:02d}"))
            _refer(alice, bob, erin)
        _readings(alice, alice, len(days) * 4, values={"systolic": 150, "diastolic": 95}, start_min=days[0] * 10_000)
        _ecgs(alice, len(days)) if days[0] == 1 else None

    grow(range(1, 6))
    client.get(_chart(alice))
    few = _queries(client, _chart(alice))
    few_timeline = _queries(client, reverse("care:chart_timeline", args=[alice.pk]))
    grow(range(6, 60))
    assert _queries(client, _chart(alice)) == few
    assert _queries(client, reverse("care:chart_timeline", args=[alice.pk])) == few_timeline


def test_a_problem_is_marked_resolved_from_the_chart(
    login: Login, alice: User, bob: User, appointment: Appointment
) -> None:
    _note(appointment, codes=("I10",))
    diagnosis = Diagnosis.objects.get()
    client = login(bob)
    page = client.get(_chart(alice)).content.decode()
    url = reverse("care:problem_resolve", args=[diagnosis.pk])
    assert url in page
    response = client.post(url)
    assert response["Location"] == _chart(alice) + "#problems"
    assert "No active diagnosis." in client.get(_chart(alice)).content.decode()
