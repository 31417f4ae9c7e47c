"""The doctor's day, in Chromium, through the real pages: Bob's dashboard
is open when Alice, on her phone, enters a crisis reading; it appears in
his triage queue without a reload. He opens her chart from it, reads her
ECG in the viewer, goes back; Alice waits in the consult room, he starts
the consult from "Waiting now", opens the consult note, writes it, picks a
diagnosis in the ICD-10 picker, signs it and books the follow-up from it;
Alice's appointment page then shows the plan. Against Daphne serving HTTP
and WebSockets in embedded mode (the in-memory layer; see consult_helpers),
forked on the test database."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import time
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from playwright.sync_api import expect

from apps.accounts.models import User
from apps.care.models import ConsultNote, NoteStatus
from apps.clinics.models import Clinic
from apps.scheduling.models import Appointment, AvailabilityRule
from apps.vitals import tasks
from apps.vitals.models import Alert, EcgRecording, EcgStatus
from apps.vitals.services_ecg import ecg_recording_analyse, ecg_recording_upload
from tests.browser.consult_helpers import (
    IN_MEMORY_LAYER,
    call_browser,
    daphne_server,
    everyone_left,
    open_video_appointment,
    signed_in_page,
    wait_connected,
)
from tests.care.notes_support import COMPLETE
from tests.vitals.ecg_support import record_100_zip

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"viewport": {"width": 1280, "height": 900}, "locale": "en-GB"}
PHONE = {"viewport": {"width": 360, "height": 740}, "locale": "en-GB", "is_mobile": True, "has_touch": True}
SAVED = re.compile(r"^Saved \d\d:\d\d$")


@pytest.fixture(scope="module")
def server(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """Its Celery tasks run in the request, as the tests' own do: Alice's
    reading, recorded by this server, delivers its alert here."""
    from telemed.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True  # inherited by the forked server
    try:
        with daphne_server(django_db_blocker, CHANNEL_LAYERS=IN_MEMORY_LAYER, NOTIFICATIONS_EMBEDDED_POLL_S=0.3) as url:
            yield url
    finally:
        app.conf.task_always_eager = previous


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Any]:
    """Started after the server has forked."""
    with call_browser() as browser:
        yield browser


@pytest.fixture
def appointment(alice: User, bob: User, clinic: Clinic) -> Iterator[Appointment]:
    """Alice's video consult with Bob in a few minutes (the room is open),
    and Bob's hours every day for the follow-up."""
    AvailabilityRule.objects.create(
        doctor=bob,
        clinic=clinic,
        weekdays=[0, 1, 2, 3, 4, 5, 6],
        start_time=time(9),
        end_time=time(12),
        slot_minutes=30,
        buffer_minutes=0,
        modes=["video", "phone", "in_person"],
    )
    booked = open_video_appointment(alice, bob, clinic)
    yield booked
    everyone_left(booked)


def _analysed_ecg(alice: User, monkeypatch: pytest.MonkeyPatch) -> int:
    """MIT-BIH record 100, uploaded by Alice and analysed here (the worker is
    this test). In the default storage, which the forked server reads (a
    storage overridden here would not be its storage): the test removes
    the files afterwards."""
    queued: list[int] = []
    monkeypatch.setattr(tasks.ecg_analyse_task, "delay", queued.append)
    uploaded = ecg_recording_upload(
        patient=alice, by=alice, file=ContentFile(record_100_zip(), name="100.zip"), name="100.zip"
    )
    recording_id = uploaded.recording.pk
    assert ecg_recording_analyse(recording_id=recording_id) == EcgStatus.DONE
    return recording_id


def test_the_doctors_day(
    server: str,
    browser: Any,
    alice: User,
    bob: User,
    appointment: Appointment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ecg_id = _analysed_ecg(alice, monkeypatch)
    dashboard = signed_in_page(browser, server, bob, **DESKTOP)
    phone = signed_in_page(browser, server, alice, **PHONE)
    try:
        _day(server, dashboard, phone, alice=alice, appointment=appointment, ecg_id=ecg_id)
    finally:
        phone.context.close()
        dashboard.context.close()
        key = EcgRecording.objects.get(pk=ecg_id).storage_key
        shutil.rmtree(default_storage.path(f"ecg/{key}"), ignore_errors=True)


def _day(server: str, dashboard: Any, phone: Any, *, alice: User, appointment: Appointment, ecg_id: int) -> None:
    # Bob's dashboard: the queue is empty, the notification socket open.
    dashboard.goto(f"{server}/")
    dashboard.wait_for_function("() => window.telemedDashboard && window.telemedDashboard.refreshes >= 1")
    assert dashboard.locator("[data-triage] [data-alert-id]").count() == 0
    assert dashboard.locator("[data-today] tbody tr", has_text="Alice").count() == 1
    dashboard.evaluate("window.neverReloaded = true")

    # Alice enters a crisis on her phone ...
    phone.goto(f"{server}/vitals/new/blood_pressure/")
    phone.locator("input[name=systolic]").fill("192")
    phone.locator("input[name=diastolic]").fill("124")
    phone.locator("main form button[type=submit]").click()
    phone.wait_for_url(re.compile(r".*/vitals/readings/\d+/$"))
    alert = Alert.objects.get(patient=alice)
    assert alert.severity == "critical"

    # ... and it appears in Bob's queue without a reload.
    item = dashboard.locator(f'[data-triage] [data-alert-id="{alert.pk}"]')
    item.wait_for()
    assert "192/124 mmHg" in item.inner_text()
    assert "Critical" in item.inner_text()
    assert dashboard.locator("[data-glance-alerts]").inner_text() == "1"
    assert dashboard.evaluate("window.neverReloaded") is True

    # He opens her chart from the alert: the open alert is there.
    item.locator("a", has_text="Alice").click()
    dashboard.wait_for_url(f"{server}/care/patients/{alice.pk}/")
    assert dashboard.locator("h1").inner_text() == "Alice"
    assert "192/124 mmHg" in dashboard.locator("main").inner_text()

    # Her ECG, from the chart, in the viewer: analysed, traced, beats marked.
    dashboard.locator(f"main a[href='/vitals/ecg/{ecg_id}/']").first.click()
    dashboard.wait_for_url(f"{server}/vitals/ecg/{ecg_id}/")
    assert dashboard.locator("[data-ecg-status]").get_attribute("data-finished") == "true"
    assert "76" in dashboard.locator(".ecg-numbers").inner_text()  # mean heart rate, /min
    dashboard.wait_for_function("() => Number(document.querySelector('[data-ecg-viewer]').dataset.drawnSamples) > 500")
    dashboard.wait_for_function("() => Number(document.querySelector('[data-ecg-viewer]').dataset.rMarkers) >= 3")

    # Back to the dashboard.
    dashboard.go_back()
    dashboard.wait_for_url(f"{server}/care/patients/{alice.pk}/")
    dashboard.go_back()
    dashboard.wait_for_url(f"{server}/")
    dashboard.wait_for_function("() => window.telemedWaiting && window.telemedWaiting.socketState === 'open'")

    # Alice waits in the consult room; Bob's "Waiting now" shows her, and he starts the consult from there.
    phone.goto(f"{server}/consults/{appointment.pk}/")
    phone.wait_for_function("() => window.telemedConsult && window.telemedConsult.consultState === 'waiting'")
    waiting = dashboard.locator("[data-waiting-list] li", has_text="Alice")
    waiting.wait_for()
    dashboard.locator("[data-today] tr.day-waiting", has_text="Alice").wait_for()
    waiting.locator("a").first.click()
    dashboard.wait_for_url(f"{server}/consults/{appointment.pk}/")
    start = dashboard.locator("[data-action=start]")
    start.wait_for(state="visible")
    dashboard.wait_for_function("() => window.telemedConsult.otherPresent === true")
    start.click()
    wait_connected(phone, dashboard)
    assert dashboard.evaluate("window.telemedConsult.consultState") == "in_progress"

    # The consult note, from the room (a new tab): started with her latest readings.
    with dashboard.context.expect_page() as opened:
        dashboard.locator("a[data-note-link]").click()
    note_page = opened.value
    note_page.set_default_timeout(20_000)
    note_page.errors = []
    note_page.on("pageerror", lambda error: note_page.errors.append(str(error)))
    note_page.wait_for_load_state()
    note_page.get_by_role("button", name="Write the note").click()
    note_page.wait_for_selector("[data-note-editor]")
    assert "192/124 mmHg" in note_page.locator("#id_objective").input_value()

    # S, O, A, P and the patient's summary, autosaved.
    note_page.fill("#id_subjective", COMPLETE["subjective"])
    note_page.fill("#id_objective", note_page.locator("#id_objective").input_value() + "\nNo oedema.")
    for name in ("assessment", "plan", "patient_summary"):
        note_page.fill(f"#id_{name}", COMPLETE[name])
    note_page.fill("#id_follow_up_after_days", "14")
    expect(note_page.locator("[data-save-status]")).to_have_text(SAVED, timeout=20_000)
    note = ConsultNote.objects.get(appointment=appointment)
    assert note.plan == COMPLETE["plan"] and note.follow_up_after_days == 14
    assert note.objective.endswith("No oedema.")

    # A diagnosis through the ICD-10 picker.
    note_page.fill("#icd-query", "hypertension")
    note_page.locator("[data-icd-results] button[data-code='I10']").click()
    note_page.locator("[data-diagnoses]", has_text="I10").wait_for()
    assert list(note.diagnoses.values_list("code", flat=True)) == ["I10"]

    # He signs (after the confirmation).
    note_page.on("dialog", lambda dialog: dialog.accept())
    note_page.check("#id_confirm")
    note_page.click("[data-sign-form] button[type=submit]")
    signed = note_page.locator("[data-signed-note]")
    signed.wait_for()
    assert COMPLETE["assessment"] in signed.inner_text()
    assert "I10" in note_page.locator("[data-diagnoses]").inner_text()
    note.refresh_from_db()
    assert note.status == NoteStatus.SIGNED

    # The follow-up, from the note: the day the plan asks for, the first free time.
    note_page.locator("[data-book-follow-up]").click()
    note_page.wait_for_url(re.compile(rf".*/care/notes/{note.pk}/follow-up/.*"))
    slot = note_page.locator("[data-follow-up-slots] button.slot").first
    when = slot.inner_text()
    slot.click()
    note_page.wait_for_url(re.compile(r".*/appointments/\d+/$"))
    note.refresh_from_db()
    follow_up = Appointment.objects.get(pk=note.follow_up_appointment_id)
    assert note_page.url.endswith(f"/appointments/{follow_up.pk}/")
    assert (follow_up.patient_id, follow_up.status) == (alice.pk, "booked")
    assert (follow_up.starts_at.date() - appointment.starts_at.date()).days in (13, 14, 15)
    assert when in note_page.locator("main").inner_text()

    # Alice's appointment page shows the plan and her follow-up.
    phone.goto(f"{server}/appointments/{appointment.pk}/")
    plan = phone.locator("[data-patient-plan]")
    plan.wait_for()
    assert COMPLETE["patient_summary"] in plan.inner_text()
    assert COMPLETE["medications"] not in plan.inner_text()  # he wrote none this time
    assert plan.locator(f"a[href='/appointments/{follow_up.pk}/']").count() == 1

    assert dashboard.errors == [] and phone.errors == [] and note_page.errors == []
