"""Bob opens Alice's chart on a 360 px phone: the trends are drawn with
the alerts marked (one open, one acknowledged), "Show more" appends the
older timeline in place (htmx), nothing is wider than the screen, and no
script fails."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.accounts.models import User
from apps.clinics.models import Clinic
from apps.scheduling.models import Appointment, AppointmentStatus
from apps.vitals.models import Alert, AlertStatus
from apps.vitals.services import ReadingInput, readings_record_many
from tests.browser.consult_helpers import session_cookie

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _fits(page: Any, width: int = 360) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth") <= width)


def test_bob_reads_alices_chart_on_his_phone(
    live_server: Any, phone_page: Any, alice: User, bob: User, clinic: Clinic
) -> None:
    now = timezone.now()
    Appointment.objects.create(
        patient=alice,
        doctor=bob,
        clinic=clinic,
        starts_at=now - timedelta(days=40),
        ends_at=now - timedelta(days=40) + timedelta(minutes=30),
        mode="video",
        booked_by=alice,
        status=AppointmentStatus.COMPLETED,
    )
    items = [
        ReadingInput(
            patient=alice,
            kind="blood_pressure",
            values={"systolic": 146 + day % 5, "diastolic": 92},
            measured_at=now - timedelta(days=day, hours=1),
            source="manual",
        )
        for day in range(1, 30)
    ]
    items += [
        ReadingInput(
            patient=alice,
            kind="blood_pressure",
            values={"systolic": 192, "diastolic": 118},
            measured_at=now - timedelta(days=day, hours=3),
            source="manual",
        )
        for day in (3, 12)
    ]
    readings_record_many(by=alice, items=items)
    older = Alert.objects.order_by("reading__measured_at").first()
    assert older is not None and Alert.objects.count() == 2
    Alert.objects.filter(pk=older.pk).update(status=AlertStatus.ACKNOWLEDGED, acknowledged_by=bob, acknowledged_at=now)

    page = phone_page
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.context.add_cookies([{"name": "sessionid", "value": session_cookie(bob), "url": live_server.url}])
    page.goto(f"{live_server.url}/care/patients/{alice.pk}/")

    page.wait_for_selector("[data-vitals-chart][data-state=drawn]")
    figure = page.locator("[data-vitals-chart] figure[data-kind=blood_pressure]")
    assert figure.get_attribute("data-alerts") == "2"
    # The open alert's filled triangle: the critical colour at the plot's top edge.
    marked = page.evaluate(
        """() => {
            const canvas = document.querySelector("[data-vitals-chart] figure[data-kind=blood_pressure] canvas");
            const { data, width, height } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
            let red = 0;
            for (let y = 0; y < height / 4; y++) for (let x = 0; x < width; x++) {
                const i = (y * width + x) * 4;
                if (data[i] > 150 && data[i + 1] < 70 && data[i + 2] < 60 && data[i + 3] > 200) red++;
            }
            return red;
        }"""
    )
    assert marked > 10, marked
    assert _fits(page)

    before = page.locator("[data-timeline-kind]").count()
    assert before == 20
    page.locator(".chart-more a").click()
    page.locator("[data-timeline-kind]").nth(20).wait_for()
    assert page.url.endswith(f"/care/patients/{alice.pk}/")  # appended in place
    assert page.locator("[data-timeline-kind=appointment]").count() == 1
    assert page.locator(".chart-more").count() == 0
    assert _fits(page)
    assert errors == []
