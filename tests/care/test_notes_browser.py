"""In Chromium, Bob writes a note: the draft autosaves ("Saved hh:mm"), the
ICD-10 picker finds 高血压 as he types and adds I10 with a click, he signs
after the confirmation, and a stale tab is told instead of overwriting."""

# ruff: noqa: F811  (the shared fixtures are imported, then named as arguments)

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from apps.accounts.models import User
from apps.care.models import ConsultNote, Diagnosis, NoteStatus
from tests.browser.conftest import browser  # noqa: F401
from tests.browser.consult_helpers import signed_in_page
from tests.care.notes_support import COMPLETE, appointment, note  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_bob_writes_autosaves_picks_a_diagnosis_and_signs(
    live_server: Any, browser: Any, bob: User, note: ConsultNote
) -> None:
    page = signed_in_page(browser, live_server.url, bob, viewport={"width": 1280, "height": 900}, locale="en-GB")
    page.goto(live_server.url + reverse("care:note_editor", args=[note.appointment_id]))

    page.fill("#id_subjective", COMPLETE["subjective"])
    expect(page.locator("[data-save-status]")).to_have_text(re.compile(r"^Saved \d\d:\d\d$"), timeout=15_000)
    assert ConsultNote.objects.get(pk=note.pk).subjective == COMPLETE["subjective"]
    for name in ("assessment", "plan", "patient_summary"):
        page.fill(f"#id_{name}", COMPLETE[name])
    expect(page.locator("[data-save-status]")).to_have_text(re.compile(r"^Saved \d\d:\d\d$"), timeout=15_000)

    page.fill("#icd-query", "高血压")
    page.wait_for_selector("[data-icd-results] button[data-code='I10']")
    page.click("[data-icd-results] button[data-code='I10']")
    page.wait_for_selector("[data-diagnoses]")
    assert list(Diagnosis.objects.values_list("code", flat=True)) == ["I10"]

    page.on("dialog", lambda dialog: dialog.accept())
    page.check("#id_confirm")
    page.click("[data-sign-form] button[type=submit]")
    page.wait_for_selector("[data-signed-note]")
    assert ConsultNote.objects.get(pk=note.pk).status == NoteStatus.SIGNED
    assert page.errors == []


def test_a_stale_tab_is_told_and_stops_saving(live_server: Any, browser: Any, bob: User, note: ConsultNote) -> None:
    page = signed_in_page(browser, live_server.url, bob, viewport={"width": 1280, "height": 900}, locale="en-GB")
    page.goto(live_server.url + reverse("care:note_editor", args=[note.appointment_id]))
    # Another tab saves first.
    ConsultNote.objects.filter(pk=note.pk).update(plan="From the other tab", version=2)

    page.fill("#id_plan", "From this tab")
    expect(page.locator("[data-save-status]")).to_contain_text("changed elsewhere", timeout=15_000)
    assert ConsultNote.objects.get(pk=note.pk).plan == "From the other tab"
    assert page.errors == []
