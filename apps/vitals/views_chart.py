"""Chart data for the readings pages, as JSON: ``/vitals/chart.json`` (the
patient's own) and ``/vitals/patients/<id>/chart.json`` (their doctor).
``?kind=`` (optional, one kind), ``?period=`` (7, 30, 90, 365 or all, as
the page's filter; default 30) or ``?since=``/``?until=`` (ISO 8601 dates or
times). Reads go through ``readings_for_user`` (access, audit); chart.py
shapes and downsamples."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from apps.accounts.decorators import consent_required, role_required
from apps.accounts.selectors import patient_get_for_user
from apps.clinics.selectors import UserRole
from apps.core.http import AuthedRequest
from apps.vitals.chart import MAX_POINTS, ChartRow, charts_data
from apps.vitals.forms import PERIODS
from apps.vitals.kinds import KINDS
from apps.vitals.selectors import bp_guideline_for, glucose_unit_for, reading_targets, readings_for_user

doctor_required = role_required(UserRole.DOCTOR)
PERIOD_CODES = frozenset(code for code, _label in PERIODS)


class _BadQuery(Exception):
    pass


def _moment(text: str) -> datetime:
    """An ISO 8601 time (naive: the viewer's zone) or date (its midnight)."""
    text = text.strip()
    try:
        moment = parse_datetime(text)
        day = None if moment else parse_date(text)
    except ValueError:
        raise _BadQuery(_("Give the time as an ISO 8601 date or date and time.")) from None
    if moment is None:
        if day is None:
            raise _BadQuery(_("Give the time as an ISO 8601 date or date and time."))
        moment = datetime.combine(day, time())
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_current_timezone())
    return moment


def _window(request: AuthedRequest) -> tuple[datetime | None, datetime | None]:
    since_text, until_text = request.GET.get("since", ""), request.GET.get("until", "")
    if since_text or until_text:
        return (_moment(since_text) if since_text else None, _moment(until_text) if until_text else None)
    period = request.GET.get("period", "") or "30"
    if period not in PERIOD_CODES:
        raise _BadQuery(_("Choose a period: %(periods)s.") % {"periods": ", ".join(sorted(PERIOD_CODES))})
    return (None if period == "all" else timezone.now() - timedelta(days=int(period)), None)


def _chart(request: AuthedRequest, *, patient_id: int) -> HttpResponse:
    kind = request.GET.get("kind", "")
    try:
        if kind and kind not in KINDS:
            raise _BadQuery(_("Unknown kind of reading."))
        since, until = _window(request)
    except _BadQuery as bad:
        return JsonResponse({"error": str(bad)}, status=400)
    patient = patient_get_for_user(user=request.user, patient_id=patient_id)
    readings = readings_for_user(user=request.user, patient_id=patient.pk, kind=kind or None, since=since, until=until)
    rows = [
        ChartRow(kind=row_kind, measured_at=measured_at, values=values, severity=severity)
        for row_kind, measured_at, values, severity in readings.order_by("measured_at", "id").values_list(
            "kind", "measured_at", "values", "severity"
        )
    ]
    tz = timezone.get_current_timezone()
    charts = charts_data(
        rows=rows,
        tz=tz,
        glucose_unit=glucose_unit_for(user=request.user),
        bp_guideline=bp_guideline_for(patient=patient),
        targets_by_kind=reading_targets(patient=patient),
    )
    body = {
        "timezone": str(tz),
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "max_points": MAX_POINTS,
        "charts": charts,
    }
    response = JsonResponse(body, json_dumps_params={"separators": (",", ":")})
    response["Cache-Control"] = "private, no-store"
    return response


@consent_required
@require_GET
def chart_mine(request: AuthedRequest) -> HttpResponse:
    return _chart(request, patient_id=request.user.pk)


@doctor_required
@require_GET
def chart_patient(request: AuthedRequest, patient_id: int) -> HttpResponse:
    return _chart(request, patient_id=patient_id)
