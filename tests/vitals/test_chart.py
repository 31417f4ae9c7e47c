"""Charts of the readings pages: the bands come from the flag rules (and a
patient's targets), long periods are downsampled to day buckets, the JSON
endpoints go through readings_for_user (access, audit) and stay small for
five years of daily readings."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.scheduling.models import Appointment
from apps.vitals.chart import MAX_POINTS, ChartRow, kind_chart, severity_bands
from apps.vitals.flags import Target
from apps.vitals.kinds import BLOOD_PRESSURE, GLUCOSE, SPO2
from apps.vitals.models import Reading
from apps.vitals.services import patient_target_set
from tests.vitals.conftest import NOW, SHANGHAI, record

Login = Callable[[User], Client]
pytestmark = pytest.mark.sqlite

CHART = reverse("vitals:chart")
D = Decimal


def bands(kind: object, field: str, **kwargs: object) -> list[tuple[Decimal, Decimal, int]]:
    return severity_bands(kind=kind, field=field, bp_guideline="china_2018", **kwargs)  # type: ignore[arg-type]


# --- Bands -----------------------------------------------------------------------


def test_the_bands_are_the_flag_rules() -> None:
    assert bands(SPO2, "spo2") == [
        (D(50), D("88.5"), 3),
        (D("88.5"), D("92.5"), 2),
        (D("92.5"), D("94.5"), 1),
        (D("94.5"), D(100), 0),
    ]
    assert bands(BLOOD_PRESSURE, "systolic") == [
        (D(50), D("69.5"), 2),
        (D("69.5"), D("89.5"), 1),
        (D("89.5"), D("139.5"), 0),
        (D("139.5"), D("179.5"), 1),
        (D("179.5"), D("180.5"), 2),
        (D("180.5"), D(300), 3),
    ]
    assert bands(BLOOD_PRESSURE, "diastolic") == [
        (D(20), D("89.5"), 0),
        (D("89.5"), D("109.5"), 1),
        (D("109.5"), D("120.5"), 2),
        (D("120.5"), D(200), 3),
    ]
    assert bands(GLUCOSE, "glucose") == [
        (D("0.5"), D("2.95"), 3),
        (D("2.95"), D("3.85"), 1),
        (D("3.85"), D("10.05"), 0),
        (D("10.05"), D("13.95"), 1),
        (D("13.95"), D("33.35"), 2),
        (D("33.35"), D(50), 3),
    ]


def test_the_acc_aha_guideline_has_its_own_bands() -> None:
    systolic = severity_bands(kind=BLOOD_PRESSURE, field="systolic", bp_guideline="acc_aha_2017")
    assert (D("89.5"), D("129.5"), 0) in systolic and (D("129.5"), D("180.5"), 1) in systolic


def test_a_patients_targets_replace_the_default_bands_but_never_hide_a_danger() -> None:
    copd = [Target(field="spo2", low=D(88), high=D(92))]
    assert bands(SPO2, "spo2", targets=copd) == [
        (D(50), D("88.5"), 3),
        (D("88.5"), D("92.5"), 0),
        (D("92.5"), D(100), 1),
    ]
    lower = [Target(field="systolic", high=D(130))]
    assert bands(BLOOD_PRESSURE, "systolic", targets=lower)[-3:] == [
        (D("130.5"), D("179.5"), 1),
        (D("179.5"), D("180.5"), 2),
        (D("180.5"), D(300), 3),
    ]
    assert bands(BLOOD_PRESSURE, "diastolic", targets=lower)[0] == (D(20), D("89.5"), 0)  # a systolic target only


# --- Downsampling ------------------------------------------------------------------


def _daily(days: int) -> list[ChartRow]:
    start = NOW - timedelta(days=days)
    return [
        ChartRow(
            kind="blood_pressure",
            measured_at=start + timedelta(days=day),
            values={"systolic": 120 + day % 7, "diastolic": 80, "pulse": 70},
            severity="critical" if day == 3 else "normal",
        )
        for day in range(days)
    ]


def _bp_chart(rows: list[ChartRow]) -> dict[str, object]:
    return kind_chart(kind=BLOOD_PRESSURE, rows=rows, tz=SHANGHAI, glucose_unit="mmol/L", bp_guideline="china_2018")


def test_up_to_max_points_every_reading_is_sent() -> None:
    rows = _daily(MAX_POINTS)
    chart = _bp_chart(rows)
    assert chart["bucket_days"] == 0 and chart["count"] == MAX_POINTS
    assert chart["t"] == [int(row.measured_at.timestamp()) for row in rows]
    systolic = chart["series"][0]  # type: ignore[index]
    assert systolic["field"] == "systolic" and systolic["y"][:3] == [120, 121, 122]
    assert "min" not in systolic
    assert chart["severity"][3] == 3 and sum(chart["severity"]) == 3  # type: ignore[index,arg-type]
    assert [series["field"] for series in chart["series"]] == ["systolic", "diastolic"]  # type: ignore[attr-defined]


def test_five_years_of_daily_readings_come_as_day_buckets() -> None:
    rows = _daily(5 * 365 + 1)
    chart = _bp_chart(rows)
    assert chart["bucket_days"] == 4
    assert len(chart["t"]) <= MAX_POINTS  # type: ignore[arg-type]
    systolic = chart["series"][0]  # type: ignore[index]
    local_day = rows[0].measured_at.astimezone(SHANGHAI).date().toordinal()
    first = [row for row in rows if row.measured_at.astimezone(SHANGHAI).date().toordinal() // 4 == local_day // 4]
    numbers = [row.values["systolic"] for row in first]
    assert systolic["min"][0] == min(numbers) and systolic["max"][0] == max(numbers)
    assert systolic["y"][0] == round(sum(numbers) / len(numbers), 1)
    assert max(chart["severity"]) == 3 and chart["severity"].count(3) == 1  # type: ignore[attr-defined]
    assert sum(1 for _ in json.dumps(chart)) < 40_000


def test_glucose_is_charted_in_the_users_unit() -> None:
    rows = [ChartRow(kind="glucose", measured_at=NOW, values={"glucose": 7.0}, severity="normal")]
    chart = kind_chart(kind=GLUCOSE, rows=rows, tz=SHANGHAI, glucose_unit="mg/dL", bp_guideline="china_2018")
    assert chart["unit"] == "mg/dL"
    assert chart["series"][0]["y"] == [126.0]  # type: ignore[index]
    assert chart["series"][0]["bands"][0] == [9.0, 53.1, 3]  # type: ignore[index]


# --- The JSON endpoints ---------------------------------------------------------------


def test_alice_gets_her_chart_data(login: Login, alice: User) -> None:
    record(alice, measured_at=NOW - timedelta(days=2))
    record(alice, measured_at=NOW - timedelta(days=1), values={"systolic": 190, "diastolic": 100})
    record(alice, kind="spo2", values={"spo2": 91}, measured_at=NOW - timedelta(days=3))
    response = login(alice).get(CHART)
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-store"
    body = response.json()
    assert body["timezone"] == "Asia/Shanghai"
    assert [chart["kind"] for chart in body["charts"]] == ["blood_pressure", "spo2"]
    bp, spo2 = body["charts"]
    assert bp["unit"] == "mmHg" and bp["label"] == "Blood pressure"
    assert [series["y"] for series in bp["series"]] == [[128, 190], [82, 100]]
    assert bp["severity"] == [0, 3]
    assert spo2["severity"] == [2] and spo2["series"][0]["bands"][1] == [88.5, 92.5, 2]
    assert AuditEvent.objects.filter(actor=alice, action="view", object_type="readings", patient=alice).exists()


def test_the_chart_follows_the_pages_filters(login: Login, alice: User) -> None:
    record(alice, measured_at=NOW - timedelta(days=2))
    record(alice, kind="spo2", values={"spo2": 97}, measured_at=NOW - timedelta(days=60))
    client = login(alice)
    assert [c["kind"] for c in client.get(CHART).json()["charts"]] == ["blood_pressure"]  # 30 days by default
    assert [c["kind"] for c in client.get(CHART, {"period": "all"}).json()["charts"]] == ["blood_pressure", "spo2"]
    assert [c["kind"] for c in client.get(CHART, {"period": "all", "kind": "spo2"}).json()["charts"]] == ["spo2"]
    window = {"since": "2026-09-01", "until": "2026-10-15T00:00:00+08:00"}
    assert [c["kind"] for c in client.get(CHART, window).json()["charts"]] == ["spo2"]
    assert client.get(CHART, {"period": "7", "kind": "glucose"}).json()["charts"] == []


def test_bad_queries_get_a_clear_error(login: Login, alice: User) -> None:
    client = login(alice)
    for query, message in [
        ({"kind": "cholesterol"}, "Unknown kind of reading."),
        ({"period": "12"}, "Choose a period"),
        ({"since": "last tuesday"}, "ISO 8601"),
        ({"until": "2026-13-01"}, "ISO 8601"),
    ]:
        response = client.get(CHART, query)
        assert response.status_code == 400, query
        assert message in response.json()["error"], query


def test_the_chart_uses_the_viewers_glucose_unit(login: Login, alice: User) -> None:
    alice.patient_profile.glucose_unit = "mg/dL"
    alice.patient_profile.save()
    record(alice, kind="glucose", values={"glucose": 7}, context="fasting", unit="mmol/L")
    [chart] = login(alice).get(CHART).json()["charts"]
    assert chart["unit"] == "mg/dL" and chart["series"][0]["y"] == [126]


def test_a_doctors_targets_show_as_bands(login: Login, alice: User, bob: User, appointment: Appointment) -> None:
    patient_target_set(patient=alice, by=bob, kind="spo2", field="spo2", low=D(88), high=D(92))
    record(alice, kind="spo2", values={"spo2": 90})
    [chart] = login(bob).get(reverse("vitals:patient_chart", args=[alice.pk])).json()["charts"]
    assert chart["series"][0]["bands"] == [[50, 88.5, 3], [88.5, 92.5, 0], [92.5, 100, 1]]
    assert chart["severity"] == [0]


def _five_years(alice: User) -> None:
    start = NOW - timedelta(days=5 * 365)
    Reading.objects.bulk_create(
        Reading(
            patient=alice,
            kind="blood_pressure",
            values={"systolic": 118 + day % 40, "diastolic": 70 + day % 25, "pulse": 60 + day % 30},
            measured_at=start + timedelta(days=day, minutes=day % 90),
            source="device",
            entered_by=alice,
            category="bp_normal",
            severity="attention" if day % 40 > 22 else "normal",
            rule="china_2018",
            content_hash=hashlib.sha256(str(day).encode()).hexdigest(),
        )
        for day in range(5 * 365)
    )


def test_five_years_of_daily_readings_stay_small(login: Login, alice: User) -> None:
    _five_years(alice)
    response = login(alice).get(CHART, {"period": "all"})
    [chart] = response.json()["charts"]
    assert chart["count"] == 5 * 365 and chart["bucket_days"] == 4
    assert len(chart["t"]) <= MAX_POINTS
    assert len(response.content) < 40_000  # measured: 21.5 KB, 2.8 KB gzipped (docs/vitals.md)
    zipped = login(alice).get(CHART, {"period": "all"}, HTTP_ACCEPT_ENCODING="gzip")
    assert zipped["Content-Encoding"] == "gzip" and len(zipped.content) < 12_000


def test_the_chart_costs_the_same_queries_for_more_readings(login: Login, alice: User) -> None:
    client = login(alice)
    record(alice)
    client.get(CHART, {"period": "all"})
    with CaptureQueriesContext(connection) as few:
        client.get(CHART, {"period": "all"})
    _five_years(alice)
    with CaptureQueriesContext(connection) as more:
        assert client.get(CHART, {"period": "all"}).json()["charts"][0]["count"] == 5 * 365 + 1
    assert len(more) == len(few)


# --- Who may see what ------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client: Client, alice: User) -> None:
    for url in (CHART, reverse("vitals:patient_chart", args=[alice.pk])):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("account_login")), url


@pytest.mark.usefixtures("appointment")
def test_only_alice_and_her_doctor_get_her_chart(
    login: Login, alice: User, bob: User, carol: User, dave: User, mallory: User
) -> None:
    from apps.accounts.services import consent_give

    record(alice)
    url = reverse("vitals:patient_chart", args=[alice.pk])
    for outsider in (mallory, dave, carol):
        client = login(outsider)
        assert client.get(url).status_code == 404, outsider
        client.logout()
    assert AuditEvent.objects.filter(action="access_denied", actor=dave, object_type="patient").exists()
    assert login(mallory).get(CHART)["Location"] == reverse("accounts:consent")
    consent_give(patient=mallory, given_by=mallory)
    assert login(mallory).get(CHART, {"period": "all"}).json()["charts"] == []  # her own: none of Alice's
    for staff in (dave, carol):
        assert login(staff).get(CHART).status_code == 404  # staff have no readings of their own
    bob_chart = login(bob).get(url)
    assert bob_chart.status_code == 200 and bob_chart.json()["charts"][0]["series"][0]["y"] == [128]


# --- The pages -------------------------------------------------------------------------


def test_my_readings_loads_the_chart_without_inline_script(login: Login, alice: User) -> None:
    page = login(alice).get(reverse("vitals:mine"), {"kind": "spo2", "period": "90"}).content.decode()
    assert f'data-url="{CHART}?kind=spo2&amp;period=90"' in page
    assert "vendor/uplot/uPlot.iife.min.js" in page and "js/vitals-chart.js" in page
    assert "vendor/uplot/uPlot.min.css" in page and "css/vitals-chart.css" in page
    assert "<script>" not in page and " style=" not in page
    assert reverse("vitals:import") in page


@pytest.mark.usefixtures("appointment")
def test_the_patients_page_charts_her_readings_for_bob(login: Login, alice: User, bob: User) -> None:
    page = login(bob).get(reverse("vitals:patient_readings", args=[alice.pk])).content.decode()
    assert f'data-url="{reverse("vitals:patient_chart", args=[alice.pk])}?kind=&amp;period=30"' in page
    assert reverse("vitals:staff_import", args=[alice.pk]) in page
