"""On a 360 px phone, Alice imports a CSV like the template, confirms, and
sees her readings charted: uPlot's canvas drawn with points, the severity
bands and flagged readings, nothing wider than the screen, no script error."""

from __future__ import annotations

import zoneinfo
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from apps.accounts.models import User
from apps.vitals.models import Reading
from tests.browser.consult_helpers import session_cookie

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
HEADER = "measured_at,kind,systolic,diastolic,pulse,value,unit,context,note"


def _template_like_csv(path: Path) -> Path:
    """Three weeks of morning blood pressures (one crisis) and fasting
    glucose in both units, as a village doctor's spreadsheet would hold."""
    now = timezone.now().astimezone(SHANGHAI)
    rows = [HEADER]
    for day in range(1, 22):
        morning = (now - timedelta(days=day)).replace(hour=7, minute=30)
        systolic, diastolic = (186, 112) if day == 5 else (128 + day % 9, 80 + day % 6)
        rows.append(f"{morning:%Y-%m-%d %H:%M},blood_pressure,{systolic},{diastolic},{66 + day % 8},,,,")
        value, unit = ("110", "mg/dL") if day % 2 else ('"6,2"', "mmol/L")
        rows.append(f"{morning.replace(hour=6, minute=45):%Y-%m-%d %H:%M},glucose,,,,{value},{unit},fasting,")
    path.write_text("\ufeff" + "\r\n".join(rows) + "\r\n", encoding="utf-8")
    return path


def _fits(page: Any, width: int = 360) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth") <= width)


def test_alice_imports_on_her_phone_and_sees_the_chart(
    live_server: Any, phone_page: Any, alice: User, tmp_path: Path
) -> None:
    page = phone_page
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.context.add_cookies([{"name": "sessionid", "value": session_cookie(alice), "url": live_server.url}])

    page.goto(live_server.url + "/vitals/")
    page.locator("a[href='/vitals/import/']").click()
    page.wait_for_url("**/vitals/import/")
    assert _fits(page)
    page.locator("input[type=file][name=file]").set_input_files(str(_template_like_csv(tmp_path / "readings.csv")))
    page.locator("form[enctype='multipart/form-data'] button[type=submit]").click()

    page.wait_for_selector("[data-import-preview]")
    assert "42" in page.locator("[data-import-new]").inner_text()
    assert page.locator("[data-import-errors]").count() == 0
    assert _fits(page)
    assert Reading.objects.count() == 0
    page.locator("[data-import-confirm]").click()

    page.wait_for_url("**/vitals/?period=30")
    assert Reading.objects.filter(patient=alice, source="csv").count() == 42
    page.wait_for_selector("[data-vitals-chart][data-state=drawn]")
    figures = page.locator("[data-vitals-chart] figure")
    assert figures.count() == 2
    for index, kind in enumerate(["blood_pressure", "glucose"]):
        figure = figures.nth(index)
        assert figure.get_attribute("data-kind") == kind
        assert int(figure.get_attribute("data-points") or 0) == 21
        assert figure.locator("canvas").count() == 1
    # The canvas has been drawn on: bands, lines, points and the flagged crisis.
    painted = page.evaluate(
        """() => {
            const canvas = document.querySelector("[data-vitals-chart] figure canvas");
            const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
            const colours = new Set();
            let inked = 0;
            for (let i = 0; i < data.length; i += 4) {
                if (data[i + 3] === 0) continue;
                inked++;
                colours.add(`${data[i] >> 4},${data[i + 1] >> 4},${data[i + 2] >> 4}`);
            }
            return { inked, colours: colours.size, width: canvas.getBoundingClientRect().width };
        }"""
    )
    assert painted["inked"] > 1000 and painted["colours"] > 5, painted
    assert 250 < painted["width"] <= 360, painted
    assert _fits(page)
    assert errors == []
