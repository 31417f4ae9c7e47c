"""'The doctor is ready': when the doctor starts the consult the patient is
told in the app, and by SMS when they are not in the room to see it; once,
in their language, and never for a consult that has ended."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.consults.models import Consult, ConsultState
from apps.consults.notices import notify_doctor_ready
from apps.consults.services import ConsultError, consult_end, consult_join, consult_start
from apps.notifications.models import Notification, NotificationPreference
from apps.notifications.services import notifications_enqueue_due
from apps.scheduling.models import Appointment
from tests.conftest import sms_sent
from tests.consults.conftest import IN_WINDOW

pytestmark = pytest.mark.sqlite
Deliver = Callable[[], Any]


def _ready(user: User) -> list[Notification]:
    return list(Notification.objects.filter(recipient=user, template="consult/ready").order_by("channel"))


def _ready_sms(user: User) -> list[str]:
    return [m.body for m in sms_sent(user.phone) if "/consults/" in m.body]


def test_a_patient_in_the_room_is_told_in_the_app_only(
    alice: User, bob: User, consult: Consult, deliver: Deliver, login: Callable[[User], Client]
) -> None:
    consult_join(consult=consult, user=alice, channel_name="alice-tab", now=IN_WINDOW)
    with deliver():
        consult_start(consult=consult, by=bob, now=IN_WINDOW)
    [in_app] = _ready(alice)
    assert (in_app.channel, in_app.status, in_app.urgent) == ("in_app", "sent", True)
    assert in_app.context["link"] == f"/consults/{consult.appointment_id}/"
    assert _ready_sms(alice) == []
    # What she reads in the app, and where it takes her.
    client = login(alice)
    page = client.get(reverse("notifications:inbox")).content.decode()
    assert "Bob is ready to see you" in page
    assert "Bob has started your video consult." in page


def test_a_patient_who_left_the_page_gets_an_sms_with_the_link_to_the_room(
    alice: User, bob: User, consult: Consult, deliver: Deliver, settings: Any
) -> None:
    settings.SITE_URL = "https://telemed.example.org"
    # She was in the room, but her page has not been heard from for minutes.
    consult_join(consult=consult, user=alice, channel_name="alice-tab", now=IN_WINDOW - timedelta(minutes=5))
    with deliver():
        consult_start(consult=consult, by=bob, now=IN_WINDOW)
    assert [(n.channel, n.status) for n in _ready(alice)] == [("in_app", "sent"), ("sms", "sent")]
    [sms] = _ready_sms(alice)
    assert "Bob is ready for your video consult now" in sms
    assert f"https://telemed.example.org/consults/{consult.appointment_id}/" in sms
    assert Notification.objects.filter(recipient=bob, template="consult/ready").count() == 0


def test_it_speaks_the_patients_language(alice: User, bob: User, consult: Consult, deliver: Deliver) -> None:
    User.objects.filter(pk=alice.pk).update(language="zh-hans")
    consult.appointment.patient.refresh_from_db()
    with deliver():
        consult_start(consult=consult, by=bob, now=IN_WINDOW)
    assert {n.language for n in _ready(alice)} == {"zh-hans"}
    [sms] = _ready_sms(alice)
    assert "进入问诊" in sms  # "Join the consult"


def test_it_is_sent_once_however_often_it_is_asked(alice: User, bob: User, consult: Consult, deliver: Deliver) -> None:
    with deliver():
        started = consult_start(consult=consult, by=bob, now=IN_WINDOW)
    with deliver():
        with pytest.raises(ConsultError):
            consult_start(consult=consult, by=bob, now=IN_WINDOW)
        notify_doctor_ready(consult=started, patient_present=False)  # the notice itself asked again
    assert len(_ready(alice)) == 2  # in the app and SMS, once each
    assert len(_ready_sms(alice)) == 1


def test_nothing_is_sent_for_a_consult_that_has_ended(
    bob: User, alice: User, consult: Consult, deliver: Deliver
) -> None:
    Consult.objects.filter(pk=consult.pk).update(state=ConsultState.ENDED)
    with deliver(), pytest.raises(ConsultError):
        consult_start(consult=consult, by=bob, now=IN_WINDOW)
    assert _ready(alice) == []
    assert _ready_sms(alice) == []


def test_a_notice_still_waiting_when_the_consult_ends_is_withdrawn(
    alice: User, bob: User, consult: Consult, appointment: Appointment
) -> None:
    # Started, but the notices have not gone out yet (the SMS gateway was
    # down, say) when the doctor ends the consult.
    consult_start(consult=consult, by=bob, now=appointment.starts_at)
    consult_end(consult=consult, by=bob, now=appointment.starts_at + timedelta(minutes=10))
    assert {n.status for n in _ready(alice)} == {"withdrawn"}
    notifications_enqueue_due()
    assert _ready_sms(alice) == []


def test_the_patients_choice_of_channels_is_kept(alice: User, bob: User, consult: Consult, deliver: Deliver) -> None:
    NotificationPreference.objects.create(user=alice, category="consult", sms=False, email=False, in_app=True)
    with deliver():
        consult_start(consult=consult, by=bob, now=IN_WINDOW)
    assert [n.channel for n in _ready(alice)] == ["in_app"]
    assert _ready_sms(alice) == []


def test_a_patient_without_a_phone_is_told_in_the_app(
    alice: User, bob: User, consult: Consult, deliver: Deliver
) -> None:
    User.objects.filter(pk=alice.pk).update(phone=None)
    consult.appointment.patient.refresh_from_db()
    with deliver():
        consult_start(consult=consult, by=bob, now=IN_WINDOW)
    assert [n.channel for n in _ready(alice)] == ["in_app"]
