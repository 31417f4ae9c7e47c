"""The patient chart (/care/patients/<id>/): who may open it, what it
shows, its timeline, and a fixed number of queries whatever the record's size."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.clinics.models import Clinic
from apps.scheduling.models import Appointment, AppointmentStatus
from apps.vitals.models import EcgRecording, EcgStatus
from apps.vitals.services import ReadingInput, readings_record_many

pytestmark = pytest.mark.sqlite  # both databases: the per-kind subqueries, the keyset cursor

Login = Callable[[User], Client]

BP = {"systolic": 128, "diastolic": 82}
CRISIS = {"systolic": 190, "diastolic": 110}
ATTENTION = {"systolic": 145, "diastolic": 92}


def _chart(patient: User) -> str:
    return reverse("care:chart", args=[patient.pk])


def _book(patient: User, doctor: User, clinic: Clinic, *, starts_in: timedelta, **extra: object) -> Appointment:
    starts_at = timezone.now() + starts_in
    return Appointment.objects.create(
        patient=patient,
        doctor=doctor,
        clinic=clinic,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=30),
        mode="video",
        booked_by=patient,
        **extra,
    )


@pytest.fixture
def appointment(alice: User, bob: User, clinic: Clinic) -> Appointment:
    return _book(alice, bob, clinic, starts_in=timedelta(days=1), reason="Headaches")


def _readings(
    patient: User, by: User, count: int, *, values: dict[str, int] | None = None, start_min: int = 10
) -> None:
    now = timezone.now()
    items = [
        ReadingInput(
            patient=patient,
            kind="blood_pressure",
            values=values or {"systolic": 120 + index % 7, "diastolic": 80},
            measured_at=now - timedelta(minutes=start_min + index * 90),
            source="manual",
        )
        for index in range(count)
    ]
    readings_record_many(by=by, items=items)


def _ecgs(patient: User, count: int) -> None:
    EcgRecording.objects.bulk_create(
        EcgRecording(
            patient=patient,
            uploaded_by=patient,
            storage_key=f"k{patient.pk}x{index}",
            original_name=f"ecg-{index}.csv",
            size_bytes=100,
            sha256=f"{index:064d}",
            file_format="generic_csv",
            status=EcgStatus.QUEUED,
        )
        for index in range(count)
    )


# --- Who may open the chart ---------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client: Client, alice: User) -> None:
    for url in (
        _chart(alice),
        reverse("care:chart_timeline", args=[alice.pk]),
        reverse("care:chart_targets", args=[alice.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("account_login")), url


@pytest.mark.usefixtures("appointment")
def test_bob_her_doctor_opens_alices_chart(login: Login, alice: User, bob: User) -> None:
    response = login(bob).get(_chart(alice))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Alice" in page and "Headaches" in page
    assert response["Cache-Control"] == "private, no-store"
    assert AuditEvent.objects.filter(
        actor=bob, action="view", object_type="patient_chart", object_id=str(alice.pk), patient=alice
    ).exists()


@pytest.mark.usefixtures("appointment")
def test_everyone_else_gets_not_found(
    login: Login, alice: User, carol: User, mallory: User, dave: User, erin: User
) -> None:
    """Alice reads her record on her own pages; Carol, the clinic admin,
    does not read clinical content; Dave (same clinic, no relation), Erin
    (another clinic) and Mallory have no relation to Alice."""
    for person in (alice, carol, mallory, dave, erin):
        client = login(person)
        for url in (_chart(alice), reverse("care:chart_timeline", args=[alice.pk])):
            assert client.get(url).status_code == 404, (person, url)
        response = client.post(
            reverse("care:chart_targets", args=[alice.pk]), {"value": "blood_pressure.systolic", "high": "130"}
        )
        assert response.status_code == 404, person
        client.logout()
    assert not alice.vital_targets.exists()


def test_a_doctor_who_is_also_a_patient_gets_not_found_for_their_own_chart(login: Login, bob: User) -> None:
    from apps.accounts.models import PatientProfile

    PatientProfile.objects.create(user=bob)
    assert login(bob).get(_chart(bob)).status_code == 404
    assert AuditEvent.objects.filter(actor=bob, action="access_denied", object_type="patient_chart").exists()


def test_a_doctor_whose_appointment_was_cancelled_gets_not_found(
    login: Login, alice: User, bob: User, clinic: Clinic
) -> None:
    _book(alice, bob, clinic, starts_in=timedelta(days=1), status=AppointmentStatus.CANCELLED)
    assert login(bob).get(_chart(alice)).status_code == 404


def test_refusals_are_audited_and_leak_nothing(login: Login, alice: User, dave: User) -> None:
    missing = login(dave).get(reverse("care:chart", args=[alice.pk + 1000]))
    refused = login(dave).get(_chart(alice))
    assert missing.status_code == refused.status_code == 404
    assert "Alice" not in refused.content.decode()
    assert AuditEvent.objects.filter(actor=dave, action="access_denied", object_id=str(alice.pk)).exists()


# --- What it shows -------------------------------------------------------------------


@pytest.mark.usefixtures("appointment")
def test_it_shows_demographics_consent_latest_readings_and_alerts(login: Login, alice: User, bob: User) -> None:
    profile = alice.patient_profile
    profile.emergency_contact_name = "Zhang Min"
    profile.emergency_contact_phone = "+8613900000009"
    profile.save()
    _readings(alice, alice, 1, values=CRISIS)
    _ecgs(alice, 1)
    page = login(bob).get(_chart(alice)).content.decode()
    assert "Zhang Min" in page and "+8613900000009" in page
    assert 'data-consent="current"' in page
    assert "190/110 mmHg" in page
    assert "Open alerts" in page
    assert reverse("vitals:ecg_recording", args=[EcgRecording.objects.get().pk]) in page
    assert reverse("vitals:patient_chart", args=[alice.pk]) in page  # the trends
    assert 'data-key="loading"' in page and "Alert: filled while open" in page  # its messages and key


@pytest.mark.usefixtures("appointment")
def test_it_shows_the_newest_reading_of_each_kind(login: Login, alice: User, bob: User) -> None:
    now = timezone.now()
    readings_record_many(
        by=alice,
        items=[
            ReadingInput(
                patient=alice, kind="blood_pressure", values=BP, measured_at=now - timedelta(days=3), source="manual"
            ),
            ReadingInput(
                patient=alice,
                kind="blood_pressure",
                values=ATTENTION,
                measured_at=now - timedelta(days=1),
                source="manual",
            ),
            ReadingInput(
                patient=alice, kind="spo2", values={"spo2": 97}, measured_at=now - timedelta(days=9), source="manual"
            ),
        ],
    )
    latest = login(bob).get(_chart(alice)).content.decode().split('class="chart-latest"')[1].split("</ul>")[0]
    assert "145/92" in latest and "128/82" not in latest
    assert "97" in latest and latest.index("145/92") < latest.index("97")  # in the kinds' order


@pytest.mark.usefixtures("appointment")
def test_a_withdrawn_consent_shows(login: Login, alice: User, bob: User) -> None:
    from apps.accounts.services import consent_withdraw

    consent_withdraw(patient=alice, withdrawn_by=alice)
    assert 'data-consent="none"' in login(bob).get(_chart(alice)).content.decode()


def test_it_lists_upcoming_and_past_appointments(login: Login, alice: User, bob: User, clinic: Clinic) -> None:
    _book(alice, bob, clinic, starts_in=timedelta(days=3), reason="Check-up")
    _book(alice, bob, clinic, starts_in=-timedelta(days=20), reason="First visit", status=AppointmentStatus.COMPLETED)
    page = login(bob).get(_chart(alice)).content.decode()
    upcoming, past = page.split('id="appointments-h"')[1].split("Past", 1)
    assert "Check-up" in upcoming and "First visit" not in upcoming
    assert "First visit" in past
    visits = Appointment.objects.order_by("starts_at")
    assert reverse("consults:room", args=[visits[1].pk]) in upcoming  # the room of his own coming consult
    assert reverse("care:note_editor", args=[visits[0].pk]) in past
    assert reverse("care:patient_book", args=[alice.pk]) in page


# --- The timeline --------------------------------------------------------------------


def test_the_timeline_mixes_kinds_newest_first(login: Login, alice: User, bob: User, clinic: Clinic) -> None:
    now = timezone.now()
    _book(alice, bob, clinic, starts_in=-timedelta(days=10), reason="Old visit", status=AppointmentStatus.COMPLETED)
    readings_record_many(
        by=alice,
        items=[
            ReadingInput(
                patient=alice,
                kind="blood_pressure",
                values=ATTENTION,
                measured_at=now - timedelta(days=5),
                source="manual",
            ),
            ReadingInput(
                patient=alice, kind="blood_pressure", values=BP, measured_at=now - timedelta(days=4), source="manual"
            ),
            ReadingInput(
                patient=alice,
                kind="blood_pressure",
                values=CRISIS,
                measured_at=now - timedelta(days=1),
                source="manual",
            ),
        ],
    )
    _ecgs(alice, 1)
    EcgRecording.objects.update(created_at=now - timedelta(days=2))
    page = login(bob).get(_chart(alice)).content.decode()
    timeline = page.split("data-chart-timeline>")[1]
    kinds = [part.split('"')[1] for part in timeline.split("data-timeline-kind=")[1:]]
    assert kinds == ["reading", "ecg", "reading", "appointment"]  # the normal reading is only in the trends
    assert timeline.index("190/110") < timeline.index("145/92")
    assert "♥" in timeline and "Appointment" in timeline


def _more(html: str) -> str:
    """The "Show more" link's htmx URL, or ""."""
    if 'class="chart-more"' not in html:
        return ""
    return html.split('class="chart-more"')[1].split('hx-get="')[1].split('"')[0].replace("&amp;", "&")


def test_show_more_pages_through_the_timeline_without_gaps(
    login: Login, alice: User, bob: User, clinic: Clinic
) -> None:
    _book(alice, bob, clinic, starts_in=-timedelta(days=60), status=AppointmentStatus.COMPLETED)
    _readings(alice, alice, 45, values=ATTENTION)
    client = login(bob)
    page = client.get(_chart(alice)).content.decode()
    seen = page.count('data-timeline-kind="reading"')
    assert seen == 20
    url = _more(page)
    while url:
        response = client.get(url, headers={"HX-Request": "true"})
        assert response.status_code == 200
        body = response.content.decode()
        assert "<html" not in body  # htmx gets the items alone
        seen += body.count('data-timeline-kind="reading"')
        url = _more(body)
    assert seen == 45
    assert 'data-timeline-kind="appointment"' in body  # the oldest comes last


def test_the_timeline_filters_by_kind_and_pages_within_it(login: Login, alice: User, bob: User, clinic: Clinic) -> None:
    for day in range(1, 26):
        _book(alice, bob, clinic, starts_in=-timedelta(days=day), status=AppointmentStatus.COMPLETED)
    _readings(alice, alice, 5, values=ATTENTION)
    client = login(bob)
    url = reverse("care:chart_timeline", args=[alice.pk])
    box = client.get(url, {"only": "appointment"}, headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in box and "data-chart-timeline-box" in box  # htmx swaps the box: chips and first page
    assert box.count('data-timeline-kind="appointment"') == 20 and 'data-timeline-kind="reading"' not in box
    assert f'href="{url}?only=appointment" hx-get' in box and 'aria-current="true">Appointment<' in box
    response = client.get(_more(box), headers={"HX-Request": "true"})
    more = response.content.decode()
    assert more.count('data-timeline-kind="appointment"') == 5 and 'data-timeline-kind="reading"' not in more
    page = client.get(url, {"only": "appointment"}).content.decode()
    assert "<html" in page and page.count('data-timeline-kind="appointment"') == 20  # without JavaScript


@pytest.mark.parametrize("query", [{"before": "yesterday"}, {"before": "1.99.1"}, {"only": "gossip"}])
def test_a_bad_timeline_cursor_or_kind_is_a_clear_error(
    login: Login, alice: User, bob: User, appointment: Appointment, query: dict[str, str]
) -> None:
    response = login(bob).get(reverse("care:chart_timeline", args=[alice.pk]), query)
    assert response.status_code == 400
    assert "does not exist" in response.content.decode()


def test_without_htmx_show_more_is_a_whole_page(login: Login, alice: User, bob: User, appointment: Appointment) -> None:
    response = login(bob).get(reverse("care:chart_timeline", args=[alice.pk]))
    assert response.status_code == 200
    assert "<html" in response.content.decode()


# --- Queries ---------------------------------------------------------------------------


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as context:
        assert client.get(url).status_code == 200
    return len(context)


def test_the_chart_costs_the_same_queries_whatever_the_records_size(
    login: Login, alice: User, bob: User, clinic: Clinic
) -> None:
    _book(alice, bob, clinic, starts_in=timedelta(days=1))
    client = login(bob)
    _readings(alice, alice, 5, values=ATTENTION)
    _ecgs(alice, 2)
    for day in range(2, 5):
        _book(alice, bob, clinic, starts_in=-timedelta(days=day), status=AppointmentStatus.COMPLETED)
    client.get(_chart(alice))  # warm the caches (roles, content types)
    few = _queries(client, _chart(alice))
    few_timeline = _queries(client, reverse("care:chart_timeline", args=[alice.pk]))

    _readings(alice, alice, 200, values=CRISIS, start_min=10_000)
    _readings(alice, alice, 50, start_min=100_000)
    EcgRecording.objects.all().delete()
    _ecgs(alice, 40)
    for day in range(5, 80):
        _book(alice, bob, clinic, starts_in=-timedelta(days=day), status=AppointmentStatus.COMPLETED)
    for day in range(2, 20):
        _book(alice, bob, clinic, starts_in=timedelta(days=day))
    many = _queries(client, _chart(alice))
    many_timeline = _queries(client, reverse("care:chart_timeline", args=[alice.pk]))
    assert many == few, (few, many)
    assert few < 50, few
    assert many_timeline == few_timeline


# --- Targets ---------------------------------------------------------------------------


def _targets_url(patient: User) -> str:
    return reverse("care:chart_targets", args=[patient.pk])


@pytest.mark.usefixtures("appointment")
def test_bob_sets_and_removes_a_target(login: Login, alice: User, bob: User) -> None:
    client = login(bob)
    response = client.post(_targets_url(alice), {"value": "blood_pressure.systolic", "high": "130"})
    assert response.status_code == 302
    assert response["Location"] == _chart(alice) + "#targets"
    target = alice.vital_targets.get()
    assert (target.kind, target.field, target.low, target.high, target.set_by) == (
        "blood_pressure",
        "systolic",
        None,
        130,
        bob,
    )
    page = client.get(_chart(alice)).content.decode()
    assert 'data-target="blood_pressure.systolic"' in page
    client.post(_targets_url(alice), {"value": "blood_pressure.systolic", "remove": "1"})
    assert not alice.vital_targets.exists()
    assert AuditEvent.objects.filter(actor=bob, object_type="patient_target", action="delete").exists()


@pytest.mark.usefixtures("appointment")
def test_a_glucose_target_in_mg_dl_is_stored_in_mmol_l(login: Login, alice: User, bob: User, settings: object) -> None:
    settings.VITALS_GLUCOSE_UNIT = "mg/dL"  # type: ignore[attr-defined]
    login(bob).post(_targets_url(alice), {"value": "glucose.glucose", "low": "72", "high": "180"})
    target = alice.vital_targets.get()
    assert (target.low, target.high) == (pytest.approx(4.0), pytest.approx(10.0))


@pytest.mark.usefixtures("appointment")
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"value": "blood_pressure.systolic"}, "Give a lowest value, a highest value or both."),
        ({"value": "blood_pressure.systolic", "low": "140", "high": "120"}, "The lowest value must be below"),
        ({"value": "blood_pressure.systolic", "high": "999"}, "Give a value from"),
        ({"value": "blood_pressure.systolic", "high": "abc"}, "Enter a number."),
        ({"value": "weight.weight", "high": "80"}, "Select a valid choice."),
    ],
)
def test_a_bad_target_is_refused_with_a_clear_error(
    login: Login, alice: User, bob: User, data: dict[str, str], message: str
) -> None:
    response = login(bob).post(_targets_url(alice), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not alice.vital_targets.exists()


@pytest.mark.usefixtures("appointment")
def test_an_acknowledged_alert_stays_on_the_timeline_with_its_note(login: Login, alice: User, bob: User) -> None:
    from apps.vitals.models import Alert
    from apps.vitals.services import alert_acknowledge

    _readings(alice, alice, 1, values=CRISIS)
    alert_acknowledge(alert=Alert.objects.get(), by=bob, note="Called her; rechecked 150/95")
    page = login(bob).get(_chart(alice)).content.decode()
    assert "Open alerts" not in page
    timeline = page.split("data-chart-timeline>")[1]
    assert "alert acknowledged by Bob" in timeline and "Called her; rechecked 150/95" in timeline
