"""The pre-call check page and its result endpoint: who may use them, when,
and what a result does (the server's recommendation, kept for the patient
and shown on the doctor's waiting list)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.clinics.models import Clinic
from apps.consults.models import Consult, ConsultEvent, ConsultEventKind
from apps.consults.precheck import RESULT_MAX_BYTES, echo_peers
from apps.consults.services import consult_end, consult_open_for, consult_start
from apps.consults.templatetags.consults import consults_waiting
from apps.scheduling.models import Appointment, AppointmentStatus
from apps.scheduling.services import appointment_cancel, appointment_mark
from tests.consults.conftest import IN_WINDOW, OPENS
from tests.scheduling.conftest import TOMORROW_9, book

Login = Callable[[User], Client]
pytestmark = pytest.mark.sqlite

MEASURED = {
    "rtt_ms": 180,
    "loss_pct": 0.5,
    "bitrate_kbps": 420,
    "relay_ok": None,
    "camera_ok": True,
    "microphone_ok": True,
}


@pytest.fixture(autouse=True)
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(IN_WINDOW, tick=False) as traveller:
        yield traveller


def _page(appointment: Appointment) -> str:
    return reverse("consults:check", args=[appointment.pk])


def _result(appointment: Appointment) -> str:
    return reverse("consults:check_result", args=[appointment.pk])


def _offer(appointment: Appointment) -> str:
    return reverse("consults:check_offer", args=[appointment.pk])


def _post(client: Client, url: str, data: Any) -> Any:
    body = data if isinstance(data, bytes) else json.dumps(data)
    return client.post(url, data=body, content_type="application/json")


def _nothing_kept(appointment: Appointment) -> bool:
    consult = Consult.objects.filter(appointment=appointment).first()
    no_event = not ConsultEvent.objects.filter(kind=ConsultEventKind.CHECK_RESULT).exists()
    return (consult is None or consult.check_result is None) and no_event


# --- The page ----------------------------------------------------------------------------


def test_it_gives_the_patient_the_check_with_its_endpoints_and_the_way_to_the_room(
    login: Login, alice: User, appointment: Appointment
) -> None:
    response = login(alice).get(_page(appointment))
    assert response.status_code == 200
    page = response.content.decode()
    assert f'data-offer-url="{_offer(appointment)}"' in page
    assert f'data-result-url="{_result(appointment)}"' in page
    assert 'data-ice-servers="[]"' in page  # nothing on the internet by default
    assert 'data-turn="false"' in page
    assert "js/consult-check.js" in page
    assert "<script>" not in page  # no inline script: the CSP forbids it
    assert f'href="{reverse("consults:room", args=[appointment.pk])}"' in page
    assert "Join the waiting room" in page
    assert "Consult with Dr Bob" in page
    assert response["Cache-Control"] == "private, no-store"


def test_it_gives_the_doctor_the_check_too(login: Login, bob: User, appointment: Appointment) -> None:
    page = login(bob).get(_page(appointment)).content.decode()
    assert 'data-role="doctor"' in page
    assert "Go to the consult room" in page
    assert "Consult with Alice" in page


def test_opening_the_check_does_not_open_the_room(login: Login, alice: User, appointment: Appointment) -> None:
    login(alice).get(_page(appointment))
    assert not Consult.objects.filter(appointment=appointment).exists()


def test_it_hands_out_turn_credentials_when_turn_is_configured(
    login: Login, alice: User, appointment: Appointment, settings: Any
) -> None:
    settings.ICE_TURN_URLS = ["turn:turn.example.org:3478?transport=udp"]
    settings.TURN_SECRET = "abcd"
    page = login(alice).get(_page(appointment)).content.decode()
    assert 'data-turn="true"' in page
    assert "turn:turn.example.org:3478?transport=udp" in page
    assert f":{alice.pk}&quot;" in page  # the username ends with her id (JSON in an attribute)


def test_the_patient_may_test_the_day_before(
    login: Login, alice: User, appointment: Appointment, clock: time_machine.Traveller
) -> None:
    """A check is allowed any time before the consult, not only while the room is open."""
    clock.move_to(OPENS - timedelta(days=1))
    page = login(alice).get(_page(appointment)).content.decode()
    assert "data-consult-check" in page
    response = _post(login(alice), _result(appointment), MEASURED)
    assert response.status_code == 200
    assert Consult.objects.get(appointment=appointment).check_result["recommendation"] == "video"


def test_it_sends_anonymous_visitors_to_sign_in(client: Client, appointment: Appointment) -> None:
    for response in (
        client.get(_page(appointment)),
        _post(client, _result(appointment), MEASURED),
        _post(client, _offer(appointment), {"type": "offer", "sdp": "v=0"}),
    ):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))
    assert _nothing_kept(appointment)


@pytest.mark.parametrize("who", ["mallory", "carol"])
def test_it_hides_the_check_from_anyone_but_the_patient_and_the_doctor(
    login: Login, appointment: Appointment, who: str, request: pytest.FixtureRequest
) -> None:
    client = login(request.getfixturevalue(who))
    assert client.get(_page(appointment)).status_code == 404
    assert _post(client, _result(appointment), MEASURED).status_code == 404
    assert _post(client, _offer(appointment), {"type": "offer", "sdp": "v=0"}).status_code == 404
    assert _nothing_kept(appointment)
    assert echo_peers.sessions == {}


def test_it_has_no_check_for_a_phone_or_cancelled_appointment(
    login: Login, alice: User, bob: User, clinic: Clinic, appointment: Appointment
) -> None:
    phone = book(alice, bob, clinic, TOMORROW_9 + timedelta(hours=1), mode="phone")
    assert login(alice).get(_page(phone)).status_code == 404
    appointment_cancel(appointment=appointment, by=alice, reason="", now=OPENS - timedelta(days=1))
    assert login(alice).get(_page(appointment)).status_code == 404
    assert _post(login(alice), _result(appointment), MEASURED).status_code == 404


def test_after_the_consult_ended_there_is_nothing_to_test(
    login: Login, alice: User, bob: User, appointment: Appointment
) -> None:
    consult = consult_open_for(appointment=appointment)
    consult_start(consult=consult, by=bob)
    consult_end(consult=consult, by=bob)
    page = login(alice).get(_page(appointment)).content.decode()
    assert "This consult has ended: there is nothing to test for." in page
    assert "data-consult-check" not in page
    assert "consult-check.js" not in page
    for url, data in ((_result(appointment), MEASURED), (_offer(appointment), {"type": "offer", "sdp": "v=0"})):
        response = _post(login(alice), url, data)
        assert response.status_code == 409
        assert response.json() == {
            "error": "ended",
            "message": "This consult has ended: there is nothing to test for.",
        }
    assert _nothing_kept(appointment)


def test_an_appointment_marked_a_no_show_has_nothing_to_test(
    login: Login, alice: User, bob: User, appointment: Appointment, clock: time_machine.Traveller
) -> None:
    clock.move_to(appointment.starts_at + timedelta(minutes=20))
    appointment_mark(appointment=appointment, status=AppointmentStatus.NO_SHOW, by=bob)
    assert "nothing to test for" in login(alice).get(_page(appointment)).content.decode()
    response = _post(login(alice), _result(appointment), MEASURED)
    assert response.status_code == 409
    assert response.json()["error"] == "not_booked"


# --- The result ----------------------------------------------------------------------------


def test_it_keeps_the_patients_result_with_the_servers_recommendation(
    login: Login, alice: User, appointment: Appointment
) -> None:
    response = _post(login(alice), _result(appointment), {**MEASURED, "bitrate_kbps": 120, "relay_ok": True})
    assert response.status_code == 200
    answer = response.json()
    assert answer["recommendation"] == "audio"
    assert answer["reason"] == "weak_for_video"
    assert answer["label"] == "Audio only"
    assert (
        answer["explanation"]
        == "Your connection is too weak for video. Talk with the doctor by voice; the chat works too."
    )
    assert answer["stored"] is True
    kept = Consult.objects.get(appointment=appointment).check_result
    assert kept == {**answer["result"]}
    assert {k: kept[k] for k in ("rtt_ms", "loss_pct", "bitrate_kbps", "relay_ok", "recommendation")} == {
        "rtt_ms": 180.0,
        "loss_pct": 0.5,
        "bitrate_kbps": 120.0,
        "relay_ok": True,
        "recommendation": "audio",
    }
    event = ConsultEvent.objects.get(kind=ConsultEventKind.CHECK_RESULT)
    assert event.actor == alice


def test_a_later_check_replaces_the_earlier_one(login: Login, alice: User, appointment: Appointment) -> None:
    _post(login(alice), _result(appointment), {**MEASURED, "rtt_ms": None})
    assert Consult.objects.get(appointment=appointment).check_result["recommendation"] == "chat"
    _post(login(alice), _result(appointment), MEASURED)
    assert Consult.objects.get(appointment=appointment).check_result["recommendation"] == "video"


def test_the_doctors_waiting_list_shows_the_result_beside_the_patient(
    login: Login, alice: User, bob: User, appointment: Appointment, rf: Any
) -> None:
    from apps.consults.services import consult_join

    _post(login(alice), _result(appointment), {**MEASURED, "camera_ok": False})
    consult_join(consult=Consult.objects.get(appointment=appointment), user=alice, channel_name="alice-socket")
    request = rf.get("/")
    request.user = bob
    (waiting,) = consults_waiting({"request": request})["waiting"]
    assert waiting.check["recommendation"] == "audio"
    page = login(bob).get(reverse("core:home")).content.decode()
    assert "Check: audio only" in page


def test_it_answers_the_doctor_without_keeping_anything(login: Login, bob: User, appointment: Appointment) -> None:
    """The waiting list shows the patient's check; the doctor's own is only for them."""
    response = _post(login(bob), _result(appointment), MEASURED)
    assert response.status_code == 200
    assert response.json()["recommendation"] == "video"
    assert response.json()["stored"] is False
    assert _nothing_kept(appointment)


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[]",
        {**MEASURED, "recommendation": "video"},  # the server decides it
        {**MEASURED, "rtt_ms": -5},
        {**MEASURED, "bitrate_kbps": "lots"},
        {k: v for k, v in MEASURED.items() if k != "camera_ok"},
        b'{"rtt_ms": NaN, "loss_pct": 0, "bitrate_kbps": 1, "camera_ok": true, "microphone_ok": true}',
        json.dumps({**MEASURED, "padding": "x" * RESULT_MAX_BYTES}).encode(),
    ],
)
def test_it_refuses_a_result_that_is_not_valid_and_keeps_nothing(
    login: Login, alice: User, appointment: Appointment, data: Any
) -> None:
    response = _post(login(alice), _result(appointment), data)
    assert response.status_code == 400
    assert response.json() == {
        "error": "bad_result",
        "message": "The test result is not valid. Please run the test again.",
    }
    assert _nothing_kept(appointment)


def test_the_endpoints_need_the_csrf_token(alice: User, appointment: Appointment) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert _post(client, _result(appointment), MEASURED).status_code == 403
    assert _post(client, _offer(appointment), {"type": "offer", "sdp": "v=0"}).status_code == 403
    assert _nothing_kept(appointment)


def test_the_endpoints_take_posts_only(login: Login, alice: User, appointment: Appointment) -> None:
    assert login(alice).get(_result(appointment)).status_code == 405
    assert login(alice).get(_offer(appointment)).status_code == 405
    assert login(alice).post(_page(appointment)).status_code == 405


def test_the_appointment_page_links_to_the_check(
    login: Login, alice: User, bob: User, appointment: Appointment, clock: time_machine.Traveller
) -> None:
    clock.move_to(OPENS - timedelta(days=1))  # the day before, too
    for user in (alice, bob):
        page = login(user).get(reverse("scheduling:detail", args=[appointment.pk])).content.decode()
        assert f'href="{_page(appointment)}" data-consult-check-link' in page
        assert "Test your camera and network" in page


def test_the_recommendation_is_in_the_patients_language(login: Login, alice: User, appointment: Appointment) -> None:
    User.objects.filter(pk=alice.pk).update(language="zh-hans")
    answer = _post(login(alice), _result(appointment), {**MEASURED, "camera_ok": False}).json()
    assert answer["recommendation"] == "audio"
    assert answer["label"] == "仅语音"
