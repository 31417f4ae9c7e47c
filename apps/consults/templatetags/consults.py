"""The consult room's entry points on other apps' pages: "Join the consult"
on a video appointment, and the doctor's "Waiting now" list."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils import timezone

from apps.consults.models import Consult, ConsultState
from apps.consults.selectors import WaitingPatient, consult_join_window, consults_waiting_for, participant_role
from apps.scheduling.models import Appointment, AppointmentStatus, ConsultMode

register = template.Library()


@register.inclusion_tag("consults/_join.html", takes_context=True)
def consult_join(context: dict[str, Any], appointment: Appointment) -> dict[str, Any]:
    """The way into the room, for the appointment's patient and doctor while
    it can still be held."""
    user = context["request"].user
    now = timezone.now()
    opens_at, closes_at = consult_join_window(appointment)
    shown = (
        appointment.mode == ConsultMode.VIDEO
        and appointment.status == AppointmentStatus.BOOKED
        and participant_role(appointment=appointment, user=user) is not None
    )
    state = Consult.objects.filter(appointment=appointment).values_list("state", flat=True).first() if shown else None
    in_progress = state == ConsultState.IN_PROGRESS
    shown = shown and state != ConsultState.ENDED and (in_progress or now < closes_at)
    return {
        "shown": shown,
        "appointment": appointment,
        "open_now": in_progress or opens_at <= now < closes_at,
        "opens_at": opens_at,
    }


@register.inclusion_tag("consults/_waiting.html", takes_context=True)
def consults_waiting(context: dict[str, Any], waiting: list[WaitingPatient] | None = None) -> dict[str, Any]:
    """The doctor's patients in a consult room now, longest waiting first
    (``waiting``: the page read them already); static/js/waiting-room.js
    keeps the list live through ``socket_path``."""
    if waiting is None:
        waiting = consults_waiting_for(doctor=context["request"].user, now=timezone.now())
    return {
        "waiting": waiting,
        "socket_path": "/ws/consults/waiting/",
    }
