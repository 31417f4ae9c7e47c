"""The note pages and endpoints: the editor (start, save, sign, conflict),
autosave, diagnoses, addenda, the follow-up booking, the ICD-10 search, the
patient's plan on the appointment page, and who is refused (404)."""

# ruff: noqa: F811  (the shared fixtures are imported, then named as arguments)

from __future__ import annotations

from collections.abc import Callable
from datetime import time, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import User
from apps.care.models import ConsultNote, Diagnosis, NoteAddendum, NoteStatus
from apps.clinics.models import Clinic
from apps.scheduling.models import Appointment, AvailabilityRule
from tests.care.notes_support import COMPLETE, appointment, dora, eve, fill, note, signed, signed_note  # noqa: F401
from tests.factories import make_clinic_admin

pytestmark = pytest.mark.django_db

Login = Callable[[User], Client]


def editor_url(appointment: Appointment) -> str:
    return reverse("care:note_editor", args=[appointment.pk])


def draft_post(note: ConsultNote, **fields: object) -> dict[str, object]:
    data: dict[str, object] = {**COMPLETE, "version": note.version, "action": "save"}
    data.update(fields)
    return data


# --- The editor ------------------------------------------------------------------------


def test_it_offers_to_start_the_note_then_starts_it(login: Login, bob: User, appointment: Appointment) -> None:
    client = login(bob)
    page = client.get(editor_url(appointment))
    assert page.status_code == 200
    assert b'value="start"' in page.content
    assert not ConsultNote.objects.exists()
    response = client.post(editor_url(appointment), {"action": "start"})
    assert response.status_code == 302
    note = ConsultNote.objects.get()
    page = client.get(editor_url(appointment))
    assert page.status_code == 200
    assert b"data-note-editor" in page.content
    assert reverse("care:note_autosave", args=[note.pk]).encode() in page.content
    assert page["Cache-Control"] == "private, no-store"


def test_it_saves_the_draft_without_javascript(login: Login, bob: User, note: ConsultNote) -> None:
    response = login(bob).post(editor_url(note.appointment), draft_post(note))
    assert response.status_code == 302
    note.refresh_from_db()
    assert note.plan == COMPLETE["plan"] and note.version == 2


def test_a_stale_save_keeps_the_typed_text_and_says_why(login: Login, bob: User, note: ConsultNote) -> None:
    fill(note, bob)
    response = login(bob).post(editor_url(note.appointment), draft_post(note, plan="Typed on the old tab", version=1))
    assert response.status_code == 409
    assert b"changed elsewhere" in response.content
    assert b"Typed on the old tab" in response.content
    note.refresh_from_db()
    assert note.plan == COMPLETE["plan"]


def test_too_long_text_is_refused_with_a_message(login: Login, bob: User, note: ConsultNote) -> None:
    response = login(bob).post(editor_url(note.appointment), draft_post(note, plan="x" * 10_001))
    assert response.status_code == 400
    assert b"at most 10000 characters" in response.content
    note.refresh_from_db()
    assert note.version == 1 and note.plan == ""


def test_it_signs_with_confirmation(login: Login, bob: User, note: ConsultNote) -> None:
    note = fill(note, bob)
    client = login(bob)
    client.post(reverse("care:note_diagnosis_add", args=[note.pk]), {"code": "I10"})
    unconfirmed = client.post(editor_url(note.appointment), {"action": "sign", "version": note.version})
    assert unconfirmed.status_code == 400
    note.refresh_from_db()
    assert note.status == NoteStatus.DRAFT
    response = client.post(editor_url(note.appointment), {"action": "sign", "version": note.version, "confirm": "on"})
    assert response.status_code == 302
    note.refresh_from_db()
    assert note.status == NoteStatus.SIGNED
    page = client.get(editor_url(note.appointment))
    assert b"data-signed-note" in page.content and b"Essential (primary) hypertension" in page.content


def test_signing_without_a_diagnosis_says_what_is_missing(login: Login, bob: User, note: ConsultNote) -> None:
    note = fill(note, bob)
    response = login(bob).post(
        editor_url(note.appointment), {"action": "sign", "version": note.version, "confirm": "on"}
    )
    assert response.status_code == 400
    assert b"at least one diagnosis" in response.content
    note.refresh_from_db()
    assert note.status == NoteStatus.DRAFT


def test_a_signed_note_refuses_saves(login: Login, bob: User, signed_note: ConsultNote) -> None:
    signed_note.refresh_from_db()
    client = login(bob)
    response = client.post(
        reverse("care:note_autosave", args=[signed_note.pk]), {"version": signed_note.version, "plan": "changed"}
    )
    assert response.status_code == 409
    assert "signed" in response.json()["error"]
    response = client.post(editor_url(signed_note.appointment), draft_post(signed_note, plan="changed"))
    signed_note.refresh_from_db()
    assert signed_note.plan == COMPLETE["plan"]


# --- Autosave ----------------------------------------------------------------------------


def test_autosave_answers_the_new_version(login: Login, bob: User, note: ConsultNote) -> None:
    response = login(bob).post(
        reverse("care:note_autosave", args=[note.pk]), {"version": 1, "subjective": "Dizzy since Monday"}
    )
    assert response.status_code == 200
    assert response.json()["version"] == 2
    assert ":" in response.json()["saved_at"]
    note.refresh_from_db()
    assert note.subjective == "Dizzy since Monday"


def test_autosave_from_a_stale_page_is_a_conflict(login: Login, bob: User, note: ConsultNote) -> None:
    client = login(bob)
    url = reverse("care:note_autosave", args=[note.pk])
    assert client.post(url, {"version": 1, "subjective": "Laptop"}).status_code == 200
    response = client.post(url, {"version": 1, "subjective": "Phone"})
    assert response.status_code == 409
    assert response.json()["code"] == "stale"
    note.refresh_from_db()
    assert note.subjective == "Laptop"


def test_autosave_refuses_bad_input_with_field_errors(login: Login, bob: User, note: ConsultNote) -> None:
    client = login(bob)
    url = reverse("care:note_autosave", args=[note.pk])
    response = client.post(url, {"version": 1, "plan": "x" * 10_001})
    assert response.status_code == 400
    assert "plan" in response.json()["fields"]
    assert client.post(url, {"version": "x", "plan": "y"}).status_code == 400
    assert client.post(url, {"version": 1, "follow_up_after_days": "-3"}).status_code == 400
    note.refresh_from_db()
    assert note.version == 1 and note.plan == ""


def test_autosave_in_chinese_gives_chinese_errors(login: Login, bob: User, note: ConsultNote, settings) -> None:  # type: ignore[no-untyped-def]
    fill(note, bob)
    response = login(bob).post(
        reverse("care:note_autosave", args=[note.pk]), {"version": 1, "plan": "x"}, HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    assert response.status_code == 409
    # Translations are compiled centrally; the message is at least the gettext one.
    assert response.json()["error"]


# --- Diagnoses --------------------------------------------------------------------------


def test_it_adds_and_removes_diagnoses(login: Login, bob: User, note: ConsultNote) -> None:
    client = login(bob)
    assert client.post(reverse("care:note_diagnosis_add", args=[note.pk]), {"code": "e11.9"}).status_code == 302
    diagnosis = Diagnosis.objects.get()
    assert diagnosis.code == "E11.9" and diagnosis.is_primary
    remove = reverse("care:note_diagnosis_remove", args=[note.pk, diagnosis.pk])
    assert client.post(remove).status_code == 302
    assert not Diagnosis.objects.exists()


def test_an_unknown_code_is_refused_with_a_message(login: Login, bob: User, note: ConsultNote) -> None:
    response = login(bob).post(reverse("care:note_diagnosis_add", args=[note.pk]), {"code": "Q99.999"})
    assert response.status_code == 400
    assert b"not a billable ICD-10-CM code" in response.content
    assert not Diagnosis.objects.exists()


def test_the_editor_searches_icd10_without_javascript(login: Login, bob: User, note: ConsultNote) -> None:
    page = login(bob).get(editor_url(note.appointment), {"icd": "高血压"})
    assert page.status_code == 200
    assert b'value="I10"' in page.content


# --- Addenda -----------------------------------------------------------------------------


def test_it_adds_a_signed_addendum(login: Login, bob: User, signed_note: ConsultNote) -> None:
    client = login(bob)
    response = client.post(reverse("care:note_addendum", args=[signed_note.pk]), {"text": "Lab: K 4.1 mmol/L"})
    assert response.status_code == 302
    addendum = NoteAddendum.objects.get()
    assert addendum.signed_at is not None
    page = client.get(editor_url(signed_note.appointment))
    assert b"Lab: K 4.1 mmol/L" in page.content


def test_a_too_long_addendum_is_refused(login: Login, bob: User, signed_note: ConsultNote) -> None:
    response = login(bob).post(reverse("care:note_addendum", args=[signed_note.pk]), {"text": "x" * 5001})
    assert response.status_code == 400
    assert not NoteAddendum.objects.exists()


# --- Follow-up ---------------------------------------------------------------------------


def test_it_books_the_follow_up_from_the_note(
    login: Login, bob: User, alice: User, clinic: Clinic, signed_note: ConsultNote
) -> None:
    AvailabilityRule.objects.create(
        doctor=bob,
        clinic=clinic,
        weekdays=[0, 1, 2, 3, 4, 5, 6],
        start_time=time(9),
        end_time=time(12),
        slot_minutes=30,
        buffer_minutes=0,
        modes=["video", "phone"],
    )
    client = login(bob)
    page = client.get(editor_url(signed_note.appointment))
    assert reverse("care:note_follow_up", args=[signed_note.pk]).encode() in page.content
    day = (timezone.now() + timedelta(days=14)).date()
    page = client.get(reverse("care:note_follow_up", args=[signed_note.pk]), {"day": day.isoformat()})
    assert page.status_code == 200
    slots = page.context["slots"]
    assert slots
    assert f'value="{slots[0].start.isoformat()}"' in page.content.decode()  # a button per free time
    response = client.post(
        reverse("care:note_follow_up", args=[signed_note.pk]),
        {"starts_at": slots[0].start.isoformat(), "mode": "video", "day": day.isoformat()},
    )
    assert response.status_code == 302
    follow_up = Appointment.objects.exclude(pk=signed_note.appointment_id).get()
    assert (follow_up.patient, follow_up.doctor) == (alice, bob)
    signed_note.refresh_from_db()
    assert signed_note.follow_up_appointment == follow_up


def test_a_follow_up_at_a_time_not_offered_is_refused(login: Login, bob: User, signed_note: ConsultNote) -> None:
    starts_at = (timezone.now() + timedelta(days=3)).replace(hour=3, minute=0, second=0, microsecond=0)
    response = login(bob).post(
        reverse("care:note_follow_up", args=[signed_note.pk]), {"starts_at": starts_at.isoformat(), "mode": "video"}
    )
    assert response.status_code == 400
    assert Appointment.objects.count() == 1


# --- The ICD-10 search endpoint ------------------------------------------------------------


def test_the_icd10_search_answers_doctors(login: Login, bob: User) -> None:
    response = login(bob).get(reverse("care:icd10_search"), {"q": "hypertension"})
    assert response.status_code == 200
    assert response.json()["results"][0] == {
        "code": "I10",
        "description": "Essential (primary) hypertension",
        "label": "Essential (primary) hypertension",
    }


def test_the_icd10_search_labels_in_chinese_for_chinese_readers(login: Login, bob: User) -> None:
    from django.utils import translation

    client = login(bob)
    with translation.override("zh-hans"):
        response = client.get(reverse("care:icd10_search"), {"q": "I10"}, HTTP_ACCEPT_LANGUAGE="zh-hans")
    result = response.json()["results"][0]
    assert result["code"] == "I10"
    assert result["label"] in ("原发性高血压", "Essential (primary) hypertension")


def test_the_icd10_search_survives_odd_queries(login: Login, bob: User) -> None:
    client = login(bob)
    for query in ("", "x" * 5000, "%00", "<script>", "E11.9.9.9"):
        response = client.get(reverse("care:icd10_search"), {"q": query})
        assert response.status_code == 200


@pytest.mark.parametrize("who", ["alice", "carol", "mallory"])
def test_the_icd10_search_refuses_non_doctors(login: Login, who: str, request: pytest.FixtureRequest) -> None:
    response = login(request.getfixturevalue(who)).get(reverse("care:icd10_search"), {"q": "I10"})
    assert response.status_code == 404


def test_the_icd10_search_refuses_anonymous(client: Client) -> None:
    response = client.get(reverse("care:icd10_search"), {"q": "I10"})
    assert response.status_code == 302
    assert "login" in response["Location"]


# --- The patient's side --------------------------------------------------------------------


def test_alice_reads_the_plan_on_her_appointment_page(login: Login, alice: User, bob: User, note: ConsultNote) -> None:
    client = login(alice)
    url = reverse("scheduling:detail", args=[note.appointment_id])
    note = fill(note, bob)
    page = client.get(url)
    assert b"data-patient-plan" not in page.content  # a draft: nothing yet
    assert COMPLETE["plan"].encode() not in page.content
    signed(note, bob)
    page = client.get(url)
    assert b"data-patient-plan" in page.content
    assert COMPLETE["patient_summary"].encode() in page.content
    assert COMPLETE["medications"].encode() in page.content
    assert COMPLETE["advice"].encode() in page.content
    assert COMPLETE["assessment"].encode() not in page.content
    assert COMPLETE["plan"].encode() not in page.content
    assert b"I10" not in page.content


def test_bob_finds_the_note_from_the_appointment_page(login: Login, bob: User, appointment: Appointment) -> None:
    page = login(bob).get(reverse("scheduling:detail", args=[appointment.pk]))
    assert editor_url(appointment).encode() in page.content


# --- Who is refused ------------------------------------------------------------------------


def note_endpoints(note: ConsultNote) -> list[tuple[str, str, dict[str, object]]]:
    diagnosis_id = note.diagnoses.values_list("pk", flat=True).first() or 1
    return [
        ("get", editor_url(note.appointment), {}),
        ("post", editor_url(note.appointment), {"action": "save", "version": note.version, "plan": "x"}),
        ("get", reverse("care:note", args=[note.pk]), {}),
        ("post", reverse("care:note_autosave", args=[note.pk]), {"version": note.version, "plan": "x"}),
        ("post", reverse("care:note_diagnosis_add", args=[note.pk]), {"code": "E11.9"}),
        ("post", reverse("care:note_diagnosis_remove", args=[note.pk, diagnosis_id]), {}),
        ("post", reverse("care:note_addendum", args=[note.pk]), {"text": "x"}),
        ("get", reverse("care:note_follow_up", args=[note.pk]), {}),
        ("post", reverse("care:problem_resolve", args=[diagnosis_id]), {}),
    ]


@pytest.mark.parametrize("who", ["alice", "carol", "mallory", "dora", "eve"])
@pytest.mark.parametrize("state", ["draft", "signed"])
def test_only_bob_reaches_the_notes_pages(
    login: Login, who: str, state: str, bob: User, note: ConsultNote, request: pytest.FixtureRequest
) -> None:
    note = fill(note, bob)
    if state == "signed":
        note = signed(note, bob)
    note.refresh_from_db()
    client = login(request.getfixturevalue(who))
    for method, url, data in note_endpoints(note):
        response = getattr(client, method)(url, data)
        assert response.status_code == 404, (who, state, url)
    fresh = ConsultNote.objects.get(pk=note.pk)
    assert (fresh.version, fresh.plan, fresh.status) == (note.version, note.plan, note.status)
    assert not NoteAddendum.objects.exists()


def test_anonymous_is_sent_to_sign_in(client: Client, bob: User, note: ConsultNote) -> None:
    for method, url, data in note_endpoints(note):
        response = getattr(client, method)(url, data)
        assert response.status_code == 302 and "login" in response["Location"], url


def test_a_doctor_who_shares_an_appointment_reads_the_signed_note_only(
    login: Login, alice: User, bob: User, dora: User, clinic: Clinic, note: ConsultNote
) -> None:
    from tests.care.helpers import appointment_between

    appointment_between(patient=alice, doctor=dora, clinic=clinic, days=1)
    client = login(dora)
    assert client.get(reverse("care:note", args=[note.pk])).status_code == 404  # Bob's draft
    signed(note, bob)
    page = client.get(reverse("care:note", args=[note.pk]))
    assert page.status_code == 200
    assert COMPLETE["assessment"].encode() in page.content
    assert b'name="text"' not in page.content  # no addendum form: not the author
    # Reading is not writing.
    assert client.post(reverse("care:note_addendum", args=[note.pk]), {"text": "mine"}).status_code == 404
    assert client.get(editor_url(note.appointment)).status_code == 404


def test_a_clinic_admin_of_the_clinic_does_not_read_clinical_content(
    login: Login, bob: User, clinic: Clinic, signed_note: ConsultNote
) -> None:
    admin = make_clinic_admin(clinic=clinic, full_name="Carl", email="carl@example.org")
    client = login(admin)
    assert client.get(reverse("care:note", args=[signed_note.pk])).status_code == 404
    page = client.get(reverse("scheduling:detail", args=[signed_note.appointment_id]))
    assert COMPLETE["assessment"].encode() not in page.content
    assert COMPLETE["patient_summary"].encode() not in page.content


def test_bob_resolves_a_problem_from_the_chart(login: Login, bob: User, signed_note: ConsultNote) -> None:
    diagnosis = signed_note.diagnoses.get()
    response = login(bob).post(reverse("care:problem_resolve", args=[diagnosis.pk]))
    assert response.status_code == 302
    assert response["Location"].endswith("#problems")
    diagnosis.refresh_from_db()
    assert diagnosis.status == "resolved"
