"""The clinic admin's "Doctors' hours": weekly hours, time off and the
booking policy, who may change them, and what a change does to slots and to
appointments already booked."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.accounts.models import User
from apps.accounts.services import consent_give
from apps.audit.models import AuditEvent
from apps.clinics.models import Clinic, Membership
from apps.scheduling.forms_hours import BookingPolicyForm, reminder_offsets_text
from apps.scheduling.labels import weekdays_label
from apps.scheduling.models import Appointment, AvailabilityRule, BookingPolicy, TimeOff
from apps.scheduling.selectors import appointments_outside_hours, doctor_free_slots
from apps.scheduling.services import HoursError, availability_rule_create, time_off_create
from tests.factories import ClinicFactory, PatientFactory, make_doctor
from tests.scheduling.conftest import NOW, SHANGHAI, TOMORROW_9, book

Login = Callable[[User], Client]
pytestmark = [pytest.mark.usefixtures("hours"), pytest.mark.sqlite]

WEDNESDAY = date(2026, 12, 2)
SATURDAY = date(2026, 12, 5)


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def _slot_times(bob: User, clinic: Clinic, day: date) -> list[str]:
    return [f"{s.start:%H:%M}" for s in doctor_free_slots(doctor=bob, clinic=clinic, first_day=day, days=1, now=NOW)]


def _rule_form(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "weekdays": ["5"],
        "start_time": "10:00",
        "end_time": "12:00",
        "slot_minutes": "20",
        "buffer_minutes": "10",
        "modes": ["video", "in_person"],
        "valid_from": "",
        "valid_until": "",
    }
    data.update(changes)
    return data


def _hours_url(clinic: Clinic) -> str:
    return reverse("scheduling:hours", args=[clinic.pk])


def _audited(action: str, object_type: str, actor: User) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, object_type=object_type, actor=actor))


def test_it_lists_each_doctors_hours_time_off_and_the_policy(
    login: Login, carol: User, bob: User, clinic: Clinic
) -> None:
    time_off_create(
        doctor=bob,
        clinic=clinic,
        starts_at=datetime(2026, 12, 24, tzinfo=SHANGHAI),
        ends_at=datetime(2026, 12, 26, tzinfo=SHANGHAI),
        reason="Family visit",
        by=carol,
    )
    page = login(carol).get(_hours_url(clinic)).content.decode()
    assert "Bob" in page
    assert "Mon–Fri 09:00–12:00" in page
    assert "30-minute slots" in page
    assert "Video, Phone" in page
    assert "Thu 2026-12-24 00:00 – Sat 2026-12-26 00:00 · Family visit" in page  # clinic time
    assert "Times in Asia/Shanghai." in page
    assert "60 days ahead" in page  # the default policy
    assert "1 d, 1 h before" in page


def test_the_clinic_admins_home_links_to_the_page(login: Login, carol: User, clinic: Clinic) -> None:
    assert _hours_url(clinic) in login(carol).get(reverse("core:home")).content.decode()


def test_it_adds_hours_and_their_slots_appear(login: Login, carol: User, bob: User, clinic: Clinic) -> None:
    assert _slot_times(bob, clinic, SATURDAY) == []
    response = login(carol).post(reverse("scheduling:rule_create", args=[clinic.pk, bob.pk]), _rule_form())
    assert response["Location"] == f"{_hours_url(clinic)}#doctor-{bob.pk}"
    rule = AvailabilityRule.objects.get(doctor=bob, weekdays=[5])
    assert (rule.clinic, rule.start_time, rule.slot_minutes, rule.buffer_minutes) == (clinic, time(10), 20, 10)
    assert rule.modes == ["video", "in_person"]
    assert _slot_times(bob, clinic, SATURDAY) == ["10:00", "10:30", "11:00", "11:30"]
    (event,) = _audited("create", "availability_rule", carol)
    assert (event.object_id, event.clinic_id) == (str(rule.pk), clinic.pk)


def test_it_changes_hours_and_slots_follow(
    login: Login, carol: User, bob: User, clinic: Clinic, hours: AvailabilityRule
) -> None:
    url = reverse("scheduling:rule_edit", args=[clinic.pk, hours.pk])
    form = login(carol).get(url).content.decode()
    assert 'value="09:00"' in form
    assert 'value="30"' in form
    response = login(carol).post(url, _rule_form(weekdays=["2"], start_time="09:00", end_time="10:00"))
    assert response.status_code == 302
    hours.refresh_from_db()
    assert (hours.weekdays, hours.end_time, hours.slot_minutes) == ([2], time(10), 20)
    assert _slot_times(bob, clinic, WEDNESDAY) == ["09:00", "09:30"]
    assert _slot_times(bob, clinic, date(2026, 12, 3)) == []  # Thursday is no longer a working day
    assert len(_audited("update", "availability_rule", carol)) == 1


def test_it_deletes_hours_and_their_slots_disappear(
    login: Login, carol: User, bob: User, clinic: Clinic, hours: AvailabilityRule
) -> None:
    response = login(carol).post(reverse("scheduling:rule_delete", args=[clinic.pk, hours.pk]))
    assert response.status_code == 302
    assert not AvailabilityRule.objects.filter(pk=hours.pk).exists()
    assert _slot_times(bob, clinic, WEDNESDAY) == []
    (event,) = _audited("delete", "availability_rule", carol)
    assert event.object_id == str(hours.pk)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"end_time": "09:00"}, "The hours must end after they start."),
        ({"weekdays": []}, "Choose at least one day of the week."),
        ({"weekdays": ["7"]}, "Select a valid choice."),
        ({"modes": []}, "Choose at least one way to consult."),
        ({"modes": ["telepathy"]}, "Select a valid choice."),
        ({"valid_from": "2027-02-01", "valid_until": "2027-01-31"}, "The last day must not be before the first day."),
        ({"end_time": "10:15", "slot_minutes": "30"}, "The hours are shorter than one slot."),
        ({"slot_minutes": "2"}, "greater than or equal to 5"),
        ({"start_time": "25:00"}, "Enter a valid time."),
        ({"weekdays": ["2"], "start_time": "11:30", "end_time": "13:00"}, "overlap the doctor&#x27;s hours Mon–Fri"),
    ],
)
def test_bad_hours_are_refused_clearly_and_change_nothing(
    login: Login,
    carol: User,
    bob: User,
    clinic: Clinic,
    hours: AvailabilityRule,
    changes: dict[str, object],
    message: str,
) -> None:
    sunday = AvailabilityRule.objects.create(
        doctor=bob, clinic=clinic, weekdays=[6], start_time=time(9), end_time=time(10), modes=["video"]
    )
    client = login(carol)
    for url in (
        reverse("scheduling:rule_create", args=[clinic.pk, bob.pk]),
        reverse("scheduling:rule_edit", args=[clinic.pk, sunday.pk]),
    ):
        response = client.post(url, _rule_form(**changes))
        assert response.status_code == 200
        assert message in response.content.decode()
    assert list(AvailabilityRule.objects.values_list("weekdays", "start_time").order_by("pk")) == [
        ([0, 1, 2, 3, 4], time(9)),
        ([6], time(9)),
    ]
    assert not AuditEvent.objects.filter(object_type="availability_rule").exists()


def test_hours_on_other_days_or_dates_do_not_overlap(bob: User, carol: User, clinic: Clinic) -> None:
    ending = AvailabilityRule.objects.create(
        doctor=bob,
        clinic=clinic,
        weekdays=[5],
        start_time=time(9),
        end_time=time(12),
        modes=["video"],
        valid_until=date(2026, 12, 31),
    )
    hours = {"start_time": time(9), "end_time": time(12), "slot_minutes": 30, "modes": ["phone"], "by": carol}
    availability_rule_create(doctor=bob, clinic=clinic, weekdays=[6], **hours)  # another day
    availability_rule_create(doctor=bob, clinic=clinic, weekdays=[5], valid_from=date(2027, 1, 1), **hours)
    availability_rule_create(
        doctor=bob,
        clinic=clinic,
        weekdays=[5],
        start_time=time(12),
        end_time=time(13),
        slot_minutes=30,
        modes=["phone"],
        by=carol,
    )  # right after, touching
    with pytest.raises(HoursError) as refused:
        availability_rule_create(doctor=bob, clinic=clinic, weekdays=[5], valid_from=date(2026, 12, 31), **hours)
    assert refused.value.code == "overlap"
    assert refused.value.overlapping == ending
    other_clinic = ClinicFactory()
    Membership.objects.create(user=bob, clinic=other_clinic, role="doctor")
    availability_rule_create(doctor=bob, clinic=other_clinic, weekdays=[5], **hours)  # the same hours elsewhere


def test_it_adds_whole_days_of_time_off_and_lists_the_appointments_left_outside(
    login: Login, carol: User, alice: User, bob: User, clinic: Clinic
) -> None:
    booked = book(alice, bob, clinic)  # Wednesday 09:00
    url = reverse("scheduling:time_off_create", args=[clinic.pk, bob.pk])
    response = login(carol).post(
        url, {"start_day": "2026-12-02", "end_day": "2026-12-02", "reason": "Training"}, follow=True
    )
    time_off = TimeOff.objects.get(doctor=bob)
    assert (time_off.starts_at, time_off.ends_at) == (
        datetime(2026, 12, 2, tzinfo=SHANGHAI),
        datetime(2026, 12, 3, tzinfo=SHANGHAI),
    )
    assert time_off.created_by == carol
    assert _slot_times(bob, clinic, WEDNESDAY) == []
    assert _slot_times(bob, clinic, date(2026, 12, 3))[0] == "09:00"
    page = response.content.decode()
    assert "1 booked appointment of Bob is outside their hours now." in page
    calendar_day = reverse("scheduling:clinic_calendar", args=[clinic.pk]) + "?day=2026-12-02&amp;span=day"
    assert f'<a href="{calendar_day}">Wed 2026-12-02 09:00–09:30</a>' in page
    assert "Alice" in page
    assert "During time off" in page
    booked.refresh_from_db()
    assert booked.status == "booked"  # not cancelled behind anyone's back
    (event,) = _audited("create", "time_off", carol)
    assert event.object_id == str(time_off.pk)
    assert "Training" not in event.reason


def test_time_off_with_times_blocks_only_those_hours(login: Login, carol: User, bob: User, clinic: Clinic) -> None:
    login(carol).post(
        reverse("scheduling:time_off_create", args=[clinic.pk, bob.pk]),
        {"start_day": "2026-12-02", "start_time": "10:00", "end_day": "2026-12-02", "end_time": "11:00"},
    )
    assert _slot_times(bob, clinic, WEDNESDAY) == ["09:00", "09:30", "11:00", "11:30"]


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"start_day": "2026-12-03", "end_day": "2026-12-02"}, "The time off must end after it starts."),
        (
            {"start_day": "2026-12-02", "start_time": "11:00", "end_day": "2026-12-02", "end_time": "10:00"},
            "The time off must end after it starts.",
        ),
        ({"start_day": "2026-11-20", "end_day": "2026-11-30"}, "This time off is already over."),
        ({"start_day": "", "end_day": "2026-12-02"}, "This field is required."),
        ({"start_day": "2026-02-30", "end_day": "2026-12-02"}, "Enter a valid date."),
    ],
)
def test_bad_time_off_is_refused_clearly_and_changes_nothing(
    login: Login, carol: User, bob: User, clinic: Clinic, form: dict[str, str], message: str
) -> None:
    response = login(carol).post(reverse("scheduling:time_off_create", args=[clinic.pk, bob.pk]), form)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not TimeOff.objects.exists()
    assert not AuditEvent.objects.filter(object_type="time_off").exists()


def test_it_deletes_time_off_and_the_slots_come_back(login: Login, carol: User, bob: User, clinic: Clinic) -> None:
    time_off = time_off_create(
        doctor=bob,
        clinic=clinic,
        starts_at=datetime(2026, 12, 2, tzinfo=SHANGHAI),
        ends_at=datetime(2026, 12, 3, tzinfo=SHANGHAI),
        by=carol,
    )
    assert _slot_times(bob, clinic, WEDNESDAY) == []
    response = login(carol).post(reverse("scheduling:time_off_delete", args=[clinic.pk, time_off.pk]))
    assert response.status_code == 302
    assert not TimeOff.objects.exists()
    assert _slot_times(bob, clinic, WEDNESDAY) == ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30"]
    (event,) = _audited("delete", "time_off", carol)
    assert event.object_id == str(time_off.pk)


def test_a_change_of_hours_lists_the_appointments_it_leaves_outside(
    login: Login, carol: User, alice: User, bob: User, clinic: Clinic, hours: AvailabilityRule
) -> None:
    late = book(alice, bob, clinic, starts_at=TOMORROW_9 + timedelta(hours=2))  # 11:00
    early = book(alice, bob, clinic, starts_at=TOMORROW_9, mode="phone")  # 09:00, by phone
    response = login(carol).post(
        reverse("scheduling:rule_edit", args=[clinic.pk, hours.pk]),
        _rule_form(weekdays=["2"], start_time="09:00", end_time="11:00", slot_minutes="30", modes=["video"]),
        follow=True,
    )
    page = response.content.decode()
    assert "2 booked appointments of Bob are outside their hours now." in page
    assert "Wed 2026-12-02 11:00–11:30" in page
    assert "Outside the weekly hours" in page
    assert "Wed 2026-12-02 09:00–09:30" in page
    assert "This way to consult is no longer offered then" in page
    outside = appointments_outside_hours(clinic=clinic, doctor=bob, now=NOW)
    assert [(o.appointment, o.reason) for o in outside] == [(early, "mode"), (late, "no_hours")]
    assert Appointment.objects.filter(status="booked").count() == 2


def test_a_change_that_keeps_booked_times_within_hours_warns_of_nothing(
    login: Login, carol: User, alice: User, bob: User, clinic: Clinic, hours: AvailabilityRule
) -> None:
    book(alice, bob, clinic)  # Wednesday 09:00-09:30
    response = login(carol).post(
        reverse("scheduling:rule_edit", args=[clinic.pk, hours.pk]),
        _rule_form(weekdays=["0", "1", "2"], start_time="08:00", end_time="12:00", slot_minutes="15", modes=["video"]),
        follow=True,
    )
    page = response.content.decode()
    assert "Hours of Bob changed." in page
    assert "outside their hours" not in page
    assert "Booked appointments outside these hours" not in page


def test_it_saves_the_booking_policy(login: Login, carol: User, bob: User, clinic: Clinic) -> None:
    url = reverse("scheduling:booking_policy", args=[clinic.pk])
    assert 'value="1d, 1h"' in login(carol).get(url).content.decode()
    response = login(carol).post(
        url,
        {
            "min_notice_minutes": "120",
            "max_ahead_days": "2",
            "cancellation_cutoff_hours": "6",
            "reminders": "2h, 1d,30",
        },
    )
    assert response["Location"] == f"{_hours_url(clinic)}#policy"
    policy = BookingPolicy.objects.get(clinic=clinic)
    assert (policy.min_notice_minutes, policy.max_ahead_days, policy.cancellation_cutoff_hours) == (120, 2, 6)
    assert policy.reminder_offsets_minutes == [1440, 120, 30]
    assert _slot_times(bob, clinic, NOW.date())[0] == "10:00"  # 09:00 is too soon now
    assert _slot_times(bob, clinic, WEDNESDAY)[-1] == "11:30"
    assert _slot_times(bob, clinic, date(2026, 12, 3)) == []  # too far ahead now
    (event,) = _audited("create", "booking_policy", carol)
    assert "reminder_offsets_minutes=1440,120,30" in event.reason
    login(carol).post(
        url, {"min_notice_minutes": "0", "max_ahead_days": "30", "cancellation_cutoff_hours": "0", "reminders": ""}
    )
    policy.refresh_from_db()
    assert (policy.min_notice_minutes, policy.reminder_offsets_minutes) == (0, [])
    assert len(_audited("update", "booking_policy", carol)) == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"reminders": "soon"}, "“soon” is not a time before the appointment"),
        ({"reminders": "15d"}, "between 1 minute and 14 days"),
        ({"reminders": "0"}, "between 1 minute and 14 days"),
        ({"reminders": "1m, 2m, 3m, 4m, 5m, 6m"}, "At most 5 reminders."),
        ({"max_ahead_days": "0"}, "greater than or equal to 1"),
        ({"min_notice_minutes": "-5"}, "greater than or equal to 0"),
        ({"cancellation_cutoff_hours": "lots"}, "Enter a whole number."),
    ],
)
def test_a_bad_booking_policy_is_refused_clearly_and_changes_nothing(
    login: Login, carol: User, clinic: Clinic, changes: dict[str, str], message: str
) -> None:
    data = {"min_notice_minutes": "60", "max_ahead_days": "30", "cancellation_cutoff_hours": "12", "reminders": "1h"}
    data.update(changes)
    response = login(carol).post(reverse("scheduling:booking_policy", args=[clinic.pk]), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not BookingPolicy.objects.exists()
    assert not AuditEvent.objects.filter(object_type="booking_policy").exists()


def test_reminders_are_read_the_way_people_write_them() -> None:
    form = BookingPolicyForm(
        {
            "min_notice_minutes": "0",
            "max_ahead_days": "1",
            "cancellation_cutoff_hours": "0",
            "reminders": "1天，2小时、30分钟",
        }
    )
    assert form.is_valid(), form.errors
    assert form.cleaned_data["reminders"] == [1440, 120, 30]
    assert reminder_offsets_text([1440, 120, 90]) == "1d, 2h, 90m"


def test_weekdays_read_as_ranges_where_they_run() -> None:
    assert weekdays_label([4, 0, 1, 2, 3]) == "Mon–Fri"
    assert weekdays_label([0, 2, 5, 6]) == "Mon, Wed, Sat, Sun"


@pytest.fixture
def other_clinic_doctor() -> tuple[Clinic, User, AvailabilityRule, TimeOff]:
    clinic_b = ClinicFactory(name="Riverside Clinic")
    dave = make_doctor(clinic=clinic_b, full_name="Dave")
    rule = AvailabilityRule.objects.create(
        doctor=dave, clinic=clinic_b, weekdays=[0], start_time=time(9), end_time=time(10), modes=["video"]
    )
    leave = TimeOff.objects.create(
        doctor=dave,
        starts_at=datetime(2026, 12, 24, tzinfo=SHANGHAI),
        ends_at=datetime(2026, 12, 25, tzinfo=SHANGHAI),
        created_by=dave,
    )
    return clinic_b, dave, rule, leave


def test_carol_cannot_see_or_change_another_clinics_doctors(
    login: Login,
    carol: User,
    clinic: Clinic,
    other_clinic_doctor: tuple[Clinic, User, AvailabilityRule, TimeOff],
) -> None:
    clinic_b, dave, rule, leave = other_clinic_doctor
    client = login(carol)
    assert "Dave" not in client.get(_hours_url(clinic)).content.decode()
    for method, url in [
        ("get", _hours_url(clinic_b)),
        ("get", reverse("scheduling:booking_policy", args=[clinic_b.pk])),
        ("post", reverse("scheduling:booking_policy", args=[clinic_b.pk])),
        # Her own clinic in the address, the other clinic's doctor, rule or time off:
        ("get", reverse("scheduling:rule_create", args=[clinic.pk, dave.pk])),
        ("post", reverse("scheduling:rule_create", args=[clinic.pk, dave.pk])),
        ("get", reverse("scheduling:rule_edit", args=[clinic.pk, rule.pk])),
        ("post", reverse("scheduling:rule_edit", args=[clinic.pk, rule.pk])),
        ("post", reverse("scheduling:rule_delete", args=[clinic.pk, rule.pk])),
        ("get", reverse("scheduling:time_off_create", args=[clinic.pk, dave.pk])),
        ("post", reverse("scheduling:time_off_create", args=[clinic.pk, dave.pk])),
        ("post", reverse("scheduling:time_off_delete", args=[clinic.pk, leave.pk])),
        # The other clinic in the address:
        ("get", reverse("scheduling:rule_edit", args=[clinic_b.pk, rule.pk])),
        ("post", reverse("scheduling:time_off_delete", args=[clinic_b.pk, leave.pk])),
    ]:
        data = _rule_form(weekdays=["0"], start_time="11:00") if method == "post" else None
        assert getattr(client, method)(url, data).status_code == 404, url
    assert AvailabilityRule.objects.filter(doctor=dave).count() == 1
    assert TimeOff.objects.filter(doctor=dave).count() == 1
    assert not BookingPolicy.objects.exists()


def test_a_doctor_who_left_the_clinic_is_not_found(
    login: Login, carol: User, bob: User, clinic: Clinic, hours: AvailabilityRule
) -> None:
    Membership.objects.filter(user=bob, clinic=clinic).update(is_active=False)
    client = login(carol)
    assert "Bob" not in client.get(_hours_url(clinic)).content.decode()
    assert client.get(reverse("scheduling:rule_create", args=[clinic.pk, bob.pk])).status_code == 404
    assert client.post(reverse("scheduling:rule_delete", args=[clinic.pk, hours.pk])).status_code == 404
    assert client.get(reverse("scheduling:time_off_create", args=[clinic.pk, bob.pk])).status_code == 404
    with pytest.raises(HoursError) as refused:
        availability_rule_create(
            doctor=bob,
            clinic=clinic,
            weekdays=[5],
            start_time=time(9),
            end_time=time(10),
            slot_minutes=30,
            modes=["video"],
            by=carol,
        )
    assert refused.value.code == "not_here"


@pytest.mark.parametrize("who", ["mallory", "alice", "bob"])
def test_people_who_are_not_its_admins_are_refused(
    login: Login, clinic: Clinic, bob: User, hours: AvailabilityRule, who: str, request: pytest.FixtureRequest
) -> None:
    client = login(request.getfixturevalue(who))
    for method, url in [
        ("get", _hours_url(clinic)),
        ("get", reverse("scheduling:booking_policy", args=[clinic.pk])),
        ("post", reverse("scheduling:booking_policy", args=[clinic.pk])),
        ("get", reverse("scheduling:rule_create", args=[clinic.pk, bob.pk])),
        ("post", reverse("scheduling:rule_create", args=[clinic.pk, bob.pk])),
        ("post", reverse("scheduling:rule_edit", args=[clinic.pk, hours.pk])),
        ("post", reverse("scheduling:rule_delete", args=[clinic.pk, hours.pk])),
        ("post", reverse("scheduling:time_off_create", args=[clinic.pk, bob.pk])),
    ]:
        data = _rule_form() if method == "post" else None
        assert getattr(client, method)(url, data).status_code == 404, url
    assert AvailabilityRule.objects.get() == hours
    assert not TimeOff.objects.exists()


def test_the_page_costs_the_same_queries_for_more_doctors_and_appointments(
    login: Login, carol: User, alice: User, bob: User, clinic: Clinic
) -> None:
    client = login(carol)

    def add_doctor_with_bookings(n: int) -> None:
        doctor = make_doctor(clinic=clinic, mfa=False)
        AvailabilityRule.objects.create(
            doctor=doctor,
            clinic=clinic,
            weekdays=[2],
            start_time=time(9),
            end_time=time(10),
            modes=["video"],
            slot_minutes=30,
        )
        patient = PatientFactory(full_name=f"Patient {n}")
        consent_give(patient=patient, given_by=patient)
        book(patient, doctor, clinic)
        TimeOff.objects.create(
            doctor=doctor,
            starts_at=datetime(2026, 12, 2, tzinfo=SHANGHAI),
            ends_at=datetime(2026, 12, 3, tzinfo=SHANGHAI),
            created_by=carol,
        )

    add_doctor_with_bookings(1)
    client.get(_hours_url(clinic))
    with CaptureQueriesContext(connection) as few:
        client.get(_hours_url(clinic))
    for n in range(2, 5):
        add_doctor_with_bookings(n)
    with CaptureQueriesContext(connection) as more:
        page = client.get(_hours_url(clinic)).content.decode()
    assert page.count("During time off") == 4
    assert len(more) == len(few)
