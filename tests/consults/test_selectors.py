"""Who may enter a consult room, when it is open, who is waiting, and the
ICE servers each participant gets."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.http import Http404

from apps.accounts.models import User
from apps.clinics.models import Clinic
from apps.consults.models import Consult, ConsultPresence, ConsultState
from apps.consults.selectors import (
    consult_get_for_participant,
    consult_is_open,
    consult_join_window,
    consult_state_for,
    consults_waiting_for,
    ice_servers_for,
    turn_password,
)
from apps.consults.services import consult_join
from apps.scheduling.models import Appointment, AppointmentStatus
from apps.scheduling.services import appointment_cancel
from tests.consults.conftest import CLOSES, IN_WINDOW, OPENS
from tests.factories import PatientFactory
from tests.scheduling.conftest import TOMORROW_9, book

pytestmark = pytest.mark.sqlite


def test_the_turn_password_matches_couturns_scheme() -> None:
    # The check values of DESIGN.md (coturn's use-auth-secret).
    assert turn_password("abcd", "1558586945:user") == "gjmiwJtPBDRToUuYPLrgczqnllY="


def test_it_opens_the_room_before_the_start_and_closes_it_after_the_end(appointment: Appointment) -> None:
    assert consult_join_window(appointment) == (OPENS, CLOSES)
    assert not consult_is_open(appointment, now=OPENS - timedelta(microseconds=1))
    assert consult_is_open(appointment, now=OPENS)
    assert consult_is_open(appointment, now=CLOSES - timedelta(microseconds=1))
    assert not consult_is_open(appointment, now=CLOSES)


def test_the_window_follows_the_settings(appointment: Appointment, settings: Any) -> None:
    settings.CONSULT_JOIN_BEFORE_MIN = 5
    settings.CONSULT_JOIN_AFTER_MIN = 0
    assert consult_join_window(appointment) == (TOMORROW_9 - timedelta(minutes=5), appointment.ends_at)


def test_it_lets_in_the_patient_and_the_doctor_only(
    alice: User, bob: User, carol: User, mallory: User, appointment: Appointment
) -> None:
    assert consult_get_for_participant(user=alice, appointment_id=appointment.pk) == appointment
    assert consult_get_for_participant(user=bob, appointment_id=appointment.pk) == appointment
    for outsider in (carol, mallory):
        with pytest.raises(Http404):
            consult_get_for_participant(user=outsider, appointment_id=appointment.pk)


def test_it_has_no_room_for_other_kinds_of_appointment_or_cancelled_ones(
    alice: User, bob: User, clinic: Clinic, appointment: Appointment
) -> None:
    by_phone = book(alice, bob, clinic, TOMORROW_9 + timedelta(hours=1), mode="phone")
    with pytest.raises(Http404):
        consult_get_for_participant(user=alice, appointment_id=by_phone.pk)
    appointment_cancel(appointment=appointment, by=alice, staff=True, reason="ill")
    with pytest.raises(Http404):
        consult_get_for_participant(user=alice, appointment_id=appointment.pk)


def test_it_gives_no_ice_servers_by_default(alice: User, consult: Consult) -> None:
    assert ice_servers_for(user=alice, consult=consult, now=IN_WINDOW) == []


def test_it_gives_stun_as_configured_and_turn_with_credentials_until_after_the_room_closes(
    alice: User, consult: Consult, settings: Any
) -> None:
    settings.ICE_STUN_URLS = ["stun:turn.example.org:3478"]
    settings.ICE_TURN_URLS = ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:443?transport=tcp"]
    settings.TURN_SECRET = "abcd"
    settings.TURN_CREDENTIAL_MARGIN_S = 600
    stun, turn = ice_servers_for(user=alice, consult=consult, now=IN_WINDOW)
    assert stun == {"urls": ["stun:turn.example.org:3478"]}
    expiry = int((CLOSES + timedelta(seconds=600)).timestamp())
    assert turn["urls"] == settings.ICE_TURN_URLS
    assert turn["username"] == f"{expiry}:{alice.pk}"
    assert turn["credential"] == turn_password("abcd", turn["username"])

    running_late = CLOSES + timedelta(hours=2)
    _stun, late = ice_servers_for(user=alice, consult=consult, now=running_late)
    assert late["username"] == f"{int((running_late + timedelta(seconds=600)).timestamp())}:{alice.pk}"


def test_it_tells_clients_to_use_turn_only_when_the_policy_is_relay(
    alice: User, consult: Consult, settings: Any
) -> None:
    assert (
        consult_state_for(consult=consult, user=alice, chat_after=None, now=IN_WINDOW)["ice_transport_policy"] == "all"
    )
    settings.ICE_TURN_URLS = ["turn:turn.example.org:3478?transport=udp"]
    settings.TURN_SECRET = "abcd"
    settings.CONSULT_ICE_TRANSPORT_POLICY = "relay"
    state = consult_state_for(consult=consult, user=alice, chat_after=None, now=IN_WINDOW)
    assert state["ice_transport_policy"] == "relay"
    assert state["ice_servers"][0]["urls"] == ["turn:turn.example.org:3478?transport=udp"]


def test_it_lists_the_doctors_waiting_patients_from_fresh_presence_only(
    alice: User, bob: User, clinic: Clinic, consult: Consult, settings: Any
) -> None:
    consult_join(consult=consult, user=alice, channel_name="alice-1", now=IN_WINDOW)
    consult_join(consult=consult, user=bob, channel_name="bob-1", now=IN_WINDOW)
    (waiting,) = consults_waiting_for(doctor=bob, now=IN_WINDOW)
    assert (waiting.appointment_id, waiting.name, waiting.since, waiting.state) == (
        consult.appointment_id,
        "Alice",
        IN_WINDOW,
        ConsultState.WAITING,
    )
    assert consults_waiting_for(doctor=alice, now=IN_WINDOW) == []
    # A socket whose process died stops counting after three missed refreshes.
    stale = IN_WINDOW + timedelta(seconds=3 * settings.CONSULT_PRESENCE_REFRESH_S + 1)
    assert consults_waiting_for(doctor=bob, now=stale) == []


def test_it_leaves_out_ended_consults_and_other_doctors_patients(
    alice: User, bob: User, clinic: Clinic, consult: Consult
) -> None:
    other_patient = PatientFactory(full_name="Dan")
    ConsultPresence.objects.create(
        consult=consult, user=other_patient, role="patient", channel_name="x", joined_at=IN_WINDOW, seen_at=IN_WINDOW
    )
    assert [w.name for w in consults_waiting_for(doctor=bob, now=IN_WINDOW)] == ["Dan"]
    Consult.objects.filter(pk=consult.pk).update(state=ConsultState.ENDED)
    assert consults_waiting_for(doctor=bob, now=IN_WINDOW) == []
    Consult.objects.filter(pk=consult.pk).update(state=ConsultState.WAITING)
    Appointment.objects.filter(pk=consult.appointment_id).update(status=AppointmentStatus.NO_SHOW)
    assert consults_waiting_for(doctor=bob, now=IN_WINDOW) == []
