"""ECG pages and endpoints: upload (the patient's own, and staff for a
patient), the recording page with its status, summary and viewer, the
viewer's JSON (a window of samples, an overview), the original's download,
and the lists. Thin: selectors_ecg checks access and reads, services_ecg
writes (docs/ecg-recordings.md)."""

from __future__ import annotations

import math
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.uploadhandler import SkipFile, TemporaryFileUploadHandler
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from apps.accounts.decorators import consent_required, role_required
from apps.accounts.models import User
from apps.clinics.selectors import UserRole
from apps.core.http import AuthedRequest
from apps.vitals.ecg import MAX_FILE_BYTES
from apps.vitals.ecg_display import ecg_summary_display
from apps.vitals.models import EcgStatus
from apps.vitals.selectors import patient_get_for_reading_entry
from apps.vitals.selectors_ecg import (
    OVERVIEW_DEFAULT_BUCKETS,
    SIGNAL_WINDOW_DEFAULT_S,
    SIGNAL_WINDOW_MAX_S,
    EcgNotReady,
    ecg_original_get_for_user,
    ecg_overview,
    ecg_recording_status_get_for_user,
    ecg_recordings_for_user,
    ecg_signal_window,
)
from apps.vitals.services_ecg import EcgUploadRefused, ecg_recording_upload

PAGE_SIZE = 50
# The form around the file (its boundary, the CSRF token) on top of the file.
UPLOAD_FORM_SLACK_BYTES = 64 * 1024
staff_required = role_required(UserRole.DOCTOR, UserRole.CLINIC_ADMIN)
doctor_required = role_required(UserRole.DOCTOR)


def _too_large_message() -> str:
    return _("The file is larger than %(limit)s MB.") % {"limit": f"{MAX_FILE_BYTES / 1024 / 1024:g}"}


class _CappedUploadHandler(TemporaryFileUploadHandler):
    """Writes the upload to a temporary file and stops at the size limit,
    counted over every file of the request (a body without a declared
    length is checked here, as it is read)."""

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.received_bytes = 0
        self.too_large = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received_bytes += len(raw_data)
        if self.received_bytes > MAX_FILE_BYTES:
            self.too_large = True
            raise SkipFile  # the rest of the file is read and dropped, nothing kept
        return super().receive_data_chunk(raw_data, start)


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _wants_json(request: HttpRequest) -> bool:
    return request.headers.get("X-Requested-With") == "XMLHttpRequest"


def _upload_page(
    request: AuthedRequest, *, patient: User, own: bool, error: str = "", status: int = 200
) -> HttpResponse:
    if error and _wants_json(request):
        return JsonResponse({"error": error}, status=status)
    action = reverse("vitals:ecg_upload") if own else reverse("vitals:ecg_staff_upload", args=[patient.pk])
    context = {"patient": patient, "own": own, "error": error, "action": action, "max_bytes": MAX_FILE_BYTES}
    return render(request, "vitals/ecg_upload.html", context, status=status)


def _upload(request: AuthedRequest, *, patient: User, own: bool) -> HttpResponse:
    if request.method != "POST":
        return _upload_page(request, patient=patient, own=own)
    if _declared_length(request) > MAX_FILE_BYTES + UPLOAD_FORM_SLACK_BYTES:
        # refused by its declared length, before the body is read
        return _upload_page(request, patient=patient, own=own, error=_too_large_message(), status=413)
    handler = _CappedUploadHandler(request)
    request.upload_handlers = [handler]
    return _upload_receive(request, patient=patient, own=own, handler=handler)


@csrf_protect
def _upload_receive(request: AuthedRequest, *, patient: User, own: bool, handler: _CappedUploadHandler) -> HttpResponse:
    upload = request.FILES.get("file")
    if handler.too_large:
        return _upload_page(request, patient=patient, own=own, error=_too_large_message(), status=413)
    if upload is None:
        return _upload_page(request, patient=patient, own=own, error=_("Choose an ECG file."), status=400)
    try:
        uploaded = ecg_recording_upload(patient=patient, by=request.user, file=upload, name=upload.name or "")
    except EcgUploadRefused as refused:
        if refused.code == "not_found":
            raise Http404 from None
        status = 403 if refused.code == "no_consent" else 400
        return _upload_page(request, patient=patient, own=own, error=refused.message, status=status)
    finally:
        upload.close()
    url = reverse("vitals:ecg_recording", args=[uploaded.recording.pk])
    if _wants_json(request):
        return JsonResponse({"url": url, "created": uploaded.created}, status=201 if uploaded.created else 200)
    if uploaded.created:
        messages.success(request, _("Uploaded. The analysis starts in a moment."))
    else:
        messages.info(request, _("This file was uploaded before: here is its recording."))
    return redirect(url)


# csrf_exempt outside, csrf_protect inside: the upload handler must be set
# before anything reads the body, and the CSRF check reads it.
@csrf_exempt
@consent_required
@require_http_methods(["GET", "POST"])
def upload(request: AuthedRequest) -> HttpResponse:
    return _upload(request, patient=request.user, own=True)


@csrf_exempt
@staff_required
@require_http_methods(["GET", "POST"])
def staff_upload(request: AuthedRequest, patient_id: int) -> HttpResponse:
    patient = patient_get_for_reading_entry(user=request.user, patient_id=patient_id)
    return _upload(request, patient=patient, own=False)


@login_required
@require_GET
def recording(request: AuthedRequest, recording_id: int) -> HttpResponse:
    access = ecg_recording_status_get_for_user(user=request.user, recording_id=recording_id)
    ecg = access.recording
    context: dict[str, Any] = {
        "recording": ecg,
        "clinical": access.clinical,
        "own": ecg.patient_id == request.user.pk,
        "finished": ecg.is_finished,
        "done": ecg.status == EcgStatus.DONE,
        "status_url": reverse("vitals:ecg_status", args=[ecg.pk]),
    }
    if access.clinical and ecg.status == EcgStatus.DONE:
        context["summary"] = ecg_summary_display(ecg)
        context["alert"] = getattr(ecg, "alert", None)  # the reverse one-to-one: absent when none
    response = render(request, "vitals/ecg_recording.html", context)
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_GET
def status(request: AuthedRequest, recording_id: int) -> HttpResponse:
    ecg = ecg_recording_status_get_for_user(user=request.user, recording_id=recording_id).recording
    response = JsonResponse(
        {"status": ecg.status, "label": str(EcgStatus(ecg.status).label), "finished": ecg.is_finished}
    )
    response["Cache-Control"] = "private, no-store"
    return response


def _number(request: HttpRequest, name: str, default: float) -> float:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise _BadParameter(name) from None
    if not math.isfinite(value) or value < 0:
        raise _BadParameter(name)
    return value


class _BadParameter(Exception):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(name)

    def response(self) -> JsonResponse:
        message = _("%(name)s must be a number of seconds, 0 or more.") % {"name": self.name}
        return JsonResponse({"error": message}, status=400)


def _not_ready() -> JsonResponse:
    return JsonResponse({"error": _("This recording has not been analysed.")}, status=409)


def _private_json(data: dict[str, Any]) -> JsonResponse:
    response = JsonResponse(data)
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_GET
def signal(request: AuthedRequest, recording_id: int) -> HttpResponse:
    """A window of the viewer's signal: ``start_s``, ``duration_s`` (at most
    60 s; ``capped`` says when it was cut)."""
    try:
        start_s = _number(request, "start_s", 0.0)
        duration_s = _number(request, "duration_s", SIGNAL_WINDOW_DEFAULT_S)
    except _BadParameter as bad:
        return bad.response()
    try:
        window = ecg_signal_window(user=request.user, recording_id=recording_id, start_s=start_s, duration_s=duration_s)
    except EcgNotReady:
        return _not_ready()
    window["max_duration_s"] = SIGNAL_WINDOW_MAX_S
    return _private_json(window)


@login_required
@require_GET
def overview(request: AuthedRequest, recording_id: int) -> HttpResponse:
    """Min/max pairs over the recording (or ``start_s``/``duration_s``), at
    most 2000 (``buckets``)."""
    try:
        start_s = _number(request, "start_s", 0.0)
        duration_s = _number(request, "duration_s", -1.0) if request.GET.get("duration_s") else None
        buckets = int(_number(request, "buckets", OVERVIEW_DEFAULT_BUCKETS))
    except _BadParameter as bad:
        return bad.response()
    try:
        data = ecg_overview(
            user=request.user, recording_id=recording_id, start_s=start_s, duration_s=duration_s, buckets=buckets
        )
    except EcgNotReady:
        return _not_ready()
    return _private_json(data)


@login_required
@require_GET
def original(request: AuthedRequest, recording_id: int) -> HttpResponseBase:
    """The file as uploaded, byte for byte, as an attachment."""
    ecg = ecg_original_get_for_user(user=request.user, recording_id=recording_id)
    try:
        handle = ecg.original.open("rb")
    except OSError:
        raise Http404 from None
    response = FileResponse(
        handle, as_attachment=True, filename=ecg.original_name, content_type="application/octet-stream"
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


def _list(request: AuthedRequest, patient_id: int, *, own: bool) -> HttpResponse:
    patient, recordings = ecg_recordings_for_user(user=request.user, patient_id=patient_id)
    page = Paginator(recordings, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "vitals/ecg_list.html", {"patient": patient, "own": own, "page": page})


@consent_required
@require_GET
def my_recordings(request: AuthedRequest) -> HttpResponse:
    return _list(request, request.user.pk, own=True)


@doctor_required
@require_GET
def patient_recordings(request: AuthedRequest, patient_id: int) -> HttpResponse:
    return _list(request, patient_id, own=False)
