"""On a 360 px phone, Alice opens her profile, reads her record's summary
(nothing wider than the screen, the print button shown by its module, no
script error) and downloads the FHIR Bundle, which the R4B models accept."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from apps.accounts.models import User
from apps.vitals.services import reading_record
from tests.browser.conftest import browser, phone_page  # noqa: F401  # fixtures
from tests.browser.consult_helpers import session_cookie
from tests.fhir.conftest import r4b

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_alice_reads_and_downloads_her_record_on_her_phone(live_server: Any, phone_page: Any, alice: User) -> None:  # noqa: F811
    for hours in range(1, 4):
        reading_record(
            patient=alice,
            by=alice,
            kind="blood_pressure",
            values={"systolic": 130 + hours, "diastolic": 85},
            measured_at=timezone.now() - timedelta(hours=hours),
            source="manual",
        )
    page = phone_page
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.context.add_cookies([{"name": "sessionid", "value": session_cookie(alice), "url": live_server.url}])

    page.goto(live_server.url + "/me/")
    page.locator("a[href='/fhir/me/summary/']").click()
    page.wait_for_url("**/fhir/me/summary/")
    assert page.locator("[data-print]").is_visible()
    assert "133/85 mmHg" in page.content()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    with page.expect_download() as download_info:
        page.locator("a[href='/fhir/me/export.json']").first.click()
    download = download_info.value
    assert download.suggested_filename.startswith("health-record-")
    bundle = json.loads(Path(download.path()).read_text(encoding="utf-8"))
    assert r4b(bundle).type == "collection"
    assert sum(1 for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation") == 3
    assert errors == []
