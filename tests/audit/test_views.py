"""The clinic admin's audit log page (apps/audit/views.py)."""

from __future__ import annotations

import itertools
import zoneinfo
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.accounts.models import User
from apps.audit.models import AuditEvent, AuditVerification
from apps.audit.services import audit_record
from apps.clinics.models import Clinic
from apps.scheduling.models import Appointment
from tests.factories import ClinicFactory, PatientFactory, make_clinic_admin, make_doctor

pytestmark = pytest.mark.sqlite  # the log's rules are plain ORM: both databases

Login = Callable[[User], Client]
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


def _url(clinic: Clinic, query: str = "") -> str:
    return reverse("audit:clinic_log", args=[clinic.pk]) + (f"?{query}" if query else "")


_slots = itertools.count()


def _appointment(patient: User, doctor: User, clinic: Clinic, status: str = "booked") -> Appointment:
    starts_at = datetime(2026, 12, 2, 9, 0, tzinfo=SHANGHAI) + timedelta(hours=next(_slots))
    return Appointment.objects.create(
        patient=patient,
        doctor=doctor,
        clinic=clinic,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=30),
        mode="video",
        booked_by=patient,
        status=status,
    )


@pytest.fixture
def alice_at_clinic(alice: User, bob: User, clinic: Clinic) -> User:
    """Alice is a patient of Carol's clinic: she has an appointment there."""
    _appointment(alice, bob, clinic)
    return alice


@pytest.fixture
def elsewhere(db: None) -> Clinic:
    return ClinicFactory(name="Riverside Clinic")


@pytest.fixture
def erin(elsewhere: Clinic) -> User:
    """A doctor of another clinic."""
    return make_doctor(clinic=elsewhere, full_name="Erin", email="erin@example.org")


def _page(login: Login, user: User, clinic: Clinic, query: str = "") -> str:
    response = login(user).get(_url(clinic, query))
    assert response.status_code == 200
    return response.content.decode()


# --- What a clinic's log holds ---------------------------------------------------------


def test_it_shows_what_the_clinics_staff_did_and_what_was_done_to_its_patients(
    login: Login, carol: User, bob: User, alice_at_clinic: User, clinic: Clinic, erin: User
) -> None:
    audit_record(action="view", actor=bob, object_type="patient_profile", object_id=101, patient=alice_at_clinic)
    audit_record(action="update", actor=carol, object_type="availability_rule", object_id=102, clinic_id=clinic.pk)
    # A doctor of another clinic reads Alice's readings (a referral, say).
    audit_record(action="view", actor=erin, object_type="readings", object_id=103, patient=alice_at_clinic)
    page = _page(login, carol, clinic)
    assert "patient_profile #101" in page
    assert "availability_rule #102" in page
    assert "readings #103" in page
    assert "Erin" in page


def test_it_hides_what_happened_in_other_clinics(
    login: Login, carol: User, bob: User, clinic: Clinic, elsewhere: Clinic, erin: User, mallory: User
) -> None:
    stranger = PatientFactory(full_name="Sam")
    _appointment(stranger, erin, elsewhere)
    audit_record(action="view", actor=erin, object_type="patient_profile", object_id=201, patient=stranger)
    audit_record(action="update", actor=erin, object_type="availability_rule", object_id=202, clinic_id=elsewhere.pk)
    audit_record(action="view", actor=mallory, object_type="readings", object_id=203, patient=mallory)
    # Bob also works elsewhere: what he does there, tagged with that clinic, is theirs.
    audit_record(action="create", actor=bob, object_type="appointment", object_id=204, clinic_id=elsewhere.pk)
    page = _page(login, carol, clinic)
    for object_id in ("#201", "#202", "#203", "#204"):
        assert object_id not in page
    assert "Sam" not in page


def test_a_cancelled_appointment_does_not_make_a_patient_the_clinics(
    login: Login, carol: User, clinic: Clinic, erin: User
) -> None:
    once = PatientFactory(full_name="Olga")
    _appointment(once, make_doctor(clinic=clinic), clinic, status="cancelled")
    audit_record(action="view", actor=erin, object_type="readings", object_id=301, patient=once)
    assert "#301" not in _page(login, carol, clinic)


def test_it_highlights_a_break_glass_and_shows_its_reason(
    login: Login, carol: User, alice_at_clinic: User, clinic: Clinic, elsewhere: Clinic, erin: User
) -> None:
    # Tagged with the doctor's own clinic: still shown to the patient's.
    audit_record(
        action="create",
        actor=erin,
        object_type="break_glass",
        object_id=401,
        patient=alice_at_clinic,
        clinic_id=elsewhere.pk,
        reason="Unconscious at the village clinic, no doctor of hers on duty",
    )
    page = _page(login, carol, clinic)
    assert 'class="break-glass"' in page
    assert "Break-glass" in page
    assert "<strong>Unconscious at the village clinic, no doctor of hers on duty</strong>" in page


def test_a_real_break_glass_shows_to_the_doctors_clinic_and_to_the_patients(
    login: Login, carol: User, alice_at_clinic: User, clinic: Clinic, elsewhere: Clinic, erin: User
) -> None:
    from apps.care.services import break_glass_open

    erins_admin = make_clinic_admin(clinic=elsewhere)
    reason = "Brought in unconscious, her doctor is away"
    break_glass_open(doctor=erin, patient=alice_at_clinic, reason=reason)
    for admin, where in ((carol, clinic), (erins_admin, elsewhere)):
        page = _page(login, admin, where, "action=create")
        assert f"<strong>{reason}</strong>" in page
        assert 'class="break-glass"' in page


# --- Filters --------------------------------------------------------------------------


@pytest.fixture
def mixed_log(carol: User, bob: User, alice_at_clinic: User, clinic: Clinic) -> User:
    zoe = PatientFactory(full_name="Zoe", phone="+8613700001234")
    _appointment(zoe, bob, clinic)
    with time_machine.travel(datetime(2026, 11, 20, 10, 0, tzinfo=SHANGHAI), tick=False):
        audit_record(action="view", actor=bob, object_type="readings", object_id=501, patient=alice_at_clinic)
    with time_machine.travel(datetime(2026, 11, 25, 10, 0, tzinfo=SHANGHAI), tick=False):
        audit_record(action="update", actor=bob, object_type="patient_target", object_id=502, patient=zoe)
        audit_record(action="view", actor=carol, object_type="appointment", object_id=503, clinic_id=clinic.pk)
    return zoe


def _ids(page: str) -> set[str]:
    return {f"#{n}" for n in (501, 502, 503) if f"#{n}" in page}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("patient=alice", {"#501"}),
        ("patient=1234", {"#502"}),  # part of Zoe's phone number
        ("user=carol", {"#503"}),
        ("user=Bob", {"#501", "#502"}),
        ("action=update", {"#502"}),
        ("date_from=2026-11-21", {"#502", "#503"}),
        ("date_to=2026-11-20", {"#501"}),
        ("date_from=2026-11-20&date_to=2026-11-20&user=bob", {"#501"}),
    ],
)
def test_it_filters_by_patient_user_action_and_days(
    login: Login, carol: User, clinic: Clinic, mixed_log: User, query: str, expected: set[str]
) -> None:
    assert _ids(_page(login, carol, clinic, query)) == expected


def test_it_filters_by_patient_id(login: Login, carol: User, clinic: Clinic, mixed_log: User) -> None:
    assert _ids(_page(login, carol, clinic, f"patient={mixed_log.pk}")) == {"#502"}


@pytest.mark.parametrize(
    "query",
    ["date_from=2026-11-25&date_to=2026-11-01", "date_from=yesterday", "action=launch", "patient=" + "x" * 101],
)
def test_it_refuses_a_bad_filter_with_a_message_and_no_events(
    login: Login, carol: User, clinic: Clinic, mixed_log: User, query: str
) -> None:
    page = _page(login, carol, clinic, query)
    assert "errorlist" in page
    assert _ids(page) == set()


def test_it_ignores_a_malformed_page_key(login: Login, carol: User, clinic: Clinic, mixed_log: User) -> None:
    assert _ids(_page(login, carol, clinic, "before=abc&after=-1")) == {"#501", "#502", "#503"}


# --- Pages ----------------------------------------------------------------------------


def _events(n: int, actor: User, clinic: Clinic) -> None:
    for i in range(n):
        audit_record(action="update", actor=actor, object_type="appointment", object_id=10_000 + i, clinic_id=clinic.pk)


def test_it_pages_newest_first_by_key(login: Login, carol: User, clinic: Clinic) -> None:
    _events(120, carol, clinic)
    client = login(carol)
    first = client.get(_url(clinic, "action=update")).context["page"]
    assert len(first.events) == 50
    assert first.events[0].object_id == "10119"
    assert first.newer_than is None
    second = client.get(_url(clinic, f"action=update&before={first.older_than}")).context["page"]
    assert second.events[0].object_id == "10069"
    assert second.newer_than is not None
    back = client.get(_url(clinic, f"action=update&after={second.newer_than}")).context["page"]
    assert [e.pk for e in back.events] == [e.pk for e in first.events]
    assert back.newer_than is None


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


def test_it_issues_the_same_number_of_queries_whatever_the_logs_size(
    login: Login, carol: User, bob: User, alice_at_clinic: User, clinic: Clinic
) -> None:
    client = login(carol)
    _events(3, bob, clinic)
    small = _queries(client, _url(clinic))
    for i in range(80):
        who = PatientFactory()
        _appointment(who, bob, clinic)
        audit_record(action="view", actor=bob, object_type="readings", object_id=i, patient=who)
    assert _queries(client, _url(clinic)) == small
    assert _queries(client, _url(clinic, "patient=alice&user=bob&action=view&date_from=2026-01-01")) == small


# --- The chain's last check -------------------------------------------------------------


def test_it_says_when_the_log_was_never_checked(login: Login, carol: User, clinic: Clinic) -> None:
    assert "Not checked yet" in _page(login, carol, clinic)
    assert not AuditVerification.objects.exists()  # a page view never walks the chain


def test_it_shows_the_last_check_of_the_chain(login: Login, carol: User, clinic: Clinic) -> None:
    _events(3, carol, clinic)
    call_command("audit_verify")
    page = _page(login, carol, clinic)
    assert "Intact" in page
    check = AuditVerification.objects.get()
    assert check.problems == 0
    assert check.events == AuditEvent.objects.filter(id__lte=check.head_event_id).count()


def test_it_shows_a_failed_check(login: Login, carol: User, clinic: Clinic) -> None:
    AuditVerification.objects.create(finished_at=datetime(2026, 11, 29, tzinfo=SHANGHAI), events=9, problems=2)
    assert "NOT intact" in _page(login, carol, clinic)


# --- Who may read it --------------------------------------------------------------------


def test_reading_the_log_is_itself_audited(login: Login, carol: User, clinic: Clinic) -> None:
    _page(login, carol, clinic, "patient=alice&action=view")
    event = AuditEvent.objects.order_by("-id").first()
    assert event is not None
    assert (event.actor_id, event.action, event.object_type, event.clinic_id) == (
        carol.pk,
        "view",
        "audit_log",
        clinic.pk,
    )
    assert event.reason == "filters: patient, action=view"  # what was searched for stays out of the log


@pytest.mark.parametrize("who", ["alice", "bob", "mallory"])
def test_it_refuses_everyone_but_the_clinics_admins(login: Login, clinic: Clinic, who: str, request: Any) -> None:
    user = request.getfixturevalue(who)
    before = AuditEvent.objects.filter(object_type="audit_log").count()
    assert login(user).get(_url(clinic)).status_code == 404
    assert AuditEvent.objects.filter(object_type="audit_log").count() == before


def test_an_admin_of_another_clinic_gets_not_found(login: Login, carol: User, clinic: Clinic) -> None:
    other_admin = make_clinic_admin(clinic=ClinicFactory())
    assert login(other_admin).get(_url(clinic)).status_code == 404
    assert login(carol).get(_url(ClinicFactory())).status_code == 404


def test_visitors_are_sent_to_sign_in(client: Client, clinic: Clinic) -> None:
    response = client.get(_url(clinic))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_the_clinic_admins_home_links_to_it(login: Login, carol: User, clinic: Clinic) -> None:
    assert _url(clinic) in login(carol).get("/").content.decode()
