"""The consult room page: ``/consults/<appointment id>/``.

The page itself holds no call logic: it says whether the room is open (and
when it opens, in the viewer's zone, if not), and hands the socket URL and
the viewer's role to ``static/js/consult-room.js``, which speaks the
protocol of docs/consult-protocol.md."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from apps.consults.models import Consult, ConsultState, ParticipantRole
from apps.consults.selectors import consult_get_for_participant, consult_join_window, participant_role
from apps.core.http import AuthedRequest
from apps.scheduling.models import AppointmentStatus


class RoomState:
    OPEN = "open"
    TOO_EARLY = "too_early"
    TOO_LATE = "too_late"
    ENDED = "ended"


@login_required
@require_GET
def room(request: AuthedRequest, appointment_id: int) -> HttpResponse:
    appointment = consult_get_for_participant(user=request.user, appointment_id=appointment_id)
    now = timezone.now()
    opens_at, closes_at = consult_join_window(appointment)
    consult_state = (
        Consult.objects.filter(appointment=appointment).values_list("state", flat=True).first() or ConsultState.WAITING
    )
    if appointment.status != AppointmentStatus.BOOKED or consult_state == ConsultState.ENDED:
        state = RoomState.ENDED
    elif consult_state == ConsultState.IN_PROGRESS or opens_at <= now < closes_at:
        state = RoomState.OPEN
    elif now < opens_at:
        state = RoomState.TOO_EARLY
    else:
        state = RoomState.TOO_LATE
    role = participant_role(appointment=appointment, user=request.user)
    other = appointment.patient if role == ParticipantRole.DOCTOR else appointment.doctor
    return render(
        request,
        "consults/room.html",
        {
            "appointment": appointment,
            "role": role,
            "other": other,
            "state": state,
            "opens_at": opens_at,
            "closes_at": closes_at,
            "socket_path": f"/ws/consults/{appointment.pk}/",
        },
    )
