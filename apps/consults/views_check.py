"""The pre-call check: ``/consults/<appointment id>/check/`` and its two
JSON endpoints (docs/precall-check.md).

- ``offer/`` (POST, async): the browser's offer in, the server echo peer's
  answer out. The peer then lives on this process's event loop
  (``apps.consults.precheck``).
- ``result/`` (POST): what the browser measured in; the server's
  recommendation out, kept on the consult when the patient ran the check
  (the doctor's own check is answered and not kept: the doctor's waiting
  list shows the patient's).

Only the appointment's patient and doctor get anything ("not found" for
everyone else); an appointment no longer booked, or whose consult ended,
has nothing to test for.
"""

from __future__ import annotations

import json
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.models import User
from apps.consults.models import Consult, ParticipantRole
from apps.consults.precheck import (
    OFFER_MAX_BYTES,
    RESULT_MAX_BYTES,
    CheckError,
    check_measurements_clean,
    check_refusal,
    echo_peers,
    offer_sdp_clean,
)
from apps.consults.selectors import consult_get_for_participant, ice_servers_for, participant_role
from apps.consults.services import ConsultError, consult_check_record, consult_open_for
from apps.core.http import AuthedRequest
from apps.scheduling.models import Appointment

# HTTP status of each refusal: the request was wrong (400), the appointment
# can no longer be tested (409), the server is full (503, try again).
_STATUS = {"busy": 503, "unavailable": 503, "ended": 409, "not_booked": 409}
RETRY_AFTER_S = 30


def _refused(error: CheckError | ConsultError) -> JsonResponse:
    status = _STATUS.get(error.code, 400)
    response = JsonResponse({"error": error.code, "message": error.message}, status=status)
    if status == 503:
        response["Retry-After"] = str(RETRY_AFTER_S)
    return response


@login_required
@require_GET
def check_page(request: AuthedRequest, appointment_id: int) -> HttpResponse:
    appointment = consult_get_for_participant(user=request.user, appointment_id=appointment_id)
    refusal = check_refusal(appointment)
    role = participant_role(appointment=appointment, user=request.user)
    other = appointment.patient if role == ParticipantRole.DOCTOR else appointment.doctor
    context: dict[str, Any] = {"appointment": appointment, "role": role, "other": other, "refusal": None}
    if refusal is not None:
        context["refusal"] = CheckError(refusal).message
        return render(request, "consults/check.html", context)
    ice_servers = ice_servers_for(user=request.user, consult=_unsaved(appointment), now=timezone.now())
    context |= {
        "ice_servers": json.dumps(ice_servers),
        "ice_transport_policy": settings.CONSULT_ICE_TRANSPORT_POLICY,
        "turn": any(str(url).startswith("turn") for server in ice_servers for url in server["urls"]),
        "video_max_kbps": settings.CONSULT_VIDEO_MAX_KBPS,
    }
    response = render(request, "consults/check.html", context)
    response["Cache-Control"] = "private, no-store"  # it holds TURN credentials
    return response


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _unsaved(appointment: Appointment) -> Consult:
    """The consult as far as its ICE servers go (they depend on the
    appointment only): a check does not open the room."""
    return Consult(appointment=appointment)


def _participant(user: User, appointment_id: int) -> tuple[Appointment, str | None]:
    """The appointment (404 for anyone but its patient and doctor) and why
    it can't be tested, if so."""
    appointment = consult_get_for_participant(user=user, appointment_id=appointment_id)
    return appointment, check_refusal(appointment)


@login_required
@require_POST
async def check_offer(request: HttpRequest, appointment_id: int) -> HttpResponse:
    """The browser's offer in, the echo peer's answer out (after its ICE
    gathering: all its candidates are in it)."""
    user = await request.auser()
    assert isinstance(user, User)  # login_required
    appointment, refusal = await sync_to_async(_participant)(user, appointment_id)
    if refusal is not None:
        return _refused(CheckError(refusal))
    try:
        if _declared_length(request) > OFFER_MAX_BYTES:
            raise CheckError("offer_too_large")  # not even read
        offer_sdp = offer_sdp_clean(request.body)
    except CheckError as error:
        return _refused(error)
    ice_servers = await sync_to_async(ice_servers_for)(user=user, consult=_unsaved(appointment), now=timezone.now())
    try:
        answer_sdp = await echo_peers.answer(user_id=user.pk, offer_sdp=offer_sdp, ice_servers=ice_servers)
    except CheckError as error:
        return _refused(error)
    return JsonResponse({"type": "answer", "sdp": answer_sdp, "duration_s": settings.CONSULT_CHECK_DURATION_S})


@login_required
@require_POST
def check_result(request: AuthedRequest, appointment_id: int) -> HttpResponse:
    """What the browser measured in; the recommendation out (kept for the
    patient, see the module's docstring)."""
    appointment, refusal = _participant(request.user, appointment_id)
    if refusal is not None:
        return _refused(CheckError(refusal))
    try:
        if _declared_length(request) > RESULT_MAX_BYTES or len(request.body) > RESULT_MAX_BYTES:
            raise CheckError("bad_result")
        try:
            data = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            raise CheckError("bad_result") from None
        measured = check_measurements_clean(data)
    except CheckError as error:
        return _refused(error)
    assessment = measured.assess()
    result = {
        "rtt_ms": measured.rtt_ms,
        "loss_pct": measured.loss_pct,
        "bitrate_kbps": measured.bitrate_kbps,
        "relay_ok": measured.relay_ok,
        "recommendation": assessment.recommendation,
    }
    stored = participant_role(appointment=appointment, user=request.user) == ParticipantRole.PATIENT
    if stored:
        consult = consult_open_for(appointment=appointment)
        try:
            result = consult_check_record(consult=consult, by=request.user, result=result, now=timezone.now())
        except ConsultError as error:
            return _refused(error)
    return JsonResponse(
        {
            "recommendation": assessment.recommendation,
            "reason": assessment.reason,
            "label": assessment.label,
            "explanation": assessment.explanation,
            "stored": stored,
            "result": result,
        }
    )
