"""Consult notes for doctors (docs/notes.md):

- ``/care/appointments/<id>/note/`` — the appointment's note: start it,
  edit the draft (Save without JavaScript; note-editor.js autosaves), sign;
  once signed, the signed note with its addenda;
- ``/care/notes/<id>/`` — a note as another doctor reads it (signed only);
- ``/care/notes/<id>/autosave/`` — the editor's autosave (JSON);
- ``…/diagnoses/``, ``…/diagnoses/<id>/remove/``, ``…/addenda/``,
  ``…/follow-up/`` — the rest of the note's actions;
- ``/care/diagnoses/<id>/resolve/`` — mark a problem resolved;
- ``/care/icd10/?q=`` — ICD-10 search for the diagnosis picker (JSON).

Thin: selectors_notes reads and checks access, services_notes writes.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.contrib import messages
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.decorators import role_required
from apps.care.forms_notes import AddendumForm, DiagnosisForm, FollowUpForm, NoteDraftForm, SignForm
from apps.care.icd10 import QUERY_MAX_LENGTH, icd10_search
from apps.care.models import ConsultNote, NoteStatus
from apps.care.selectors_notes import (
    appointment_get_for_note_author,
    diagnosis_get_for_resolver,
    note_addenda,
    note_diagnoses,
    note_for_appointment,
    note_get_for_author,
    note_get_for_user,
)
from apps.care.services_notes import (
    NoteRefused,
    consult_note_save_draft,
    consult_note_sign,
    consult_note_start,
    diagnosis_add,
    diagnosis_remove,
    diagnosis_resolve,
    note_addendum_add,
    note_follow_up_book,
)
from apps.clinics.selectors import UserRole
from apps.core.http import AuthedRequest, date_param
from apps.scheduling.selectors import clinic_zone, doctor_free_day
from apps.scheduling.services import BookingError

doctor_required = role_required(UserRole.DOCTOR)

ICD10_RESULTS = 20


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "private, no-store"
    return response


def _editor_url(note: ConsultNote, anchor: str = "") -> str:
    url = reverse("care:note_editor", args=[note.appointment_id])
    return f"{url}#{anchor}" if anchor else url


def _render_editor(
    request: AuthedRequest,
    note: ConsultNote,
    *,
    draft_form: NoteDraftForm | None = None,
    sign_form: SignForm | None = None,
    diagnosis_form: DiagnosisForm | None = None,
    addendum_form: AddendumForm | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    query = request.GET.get("icd", "")[:QUERY_MAX_LENGTH].strip()
    context: dict[str, Any] = {
        "note": note,
        "appointment": note.appointment,
        "patient": note.patient,
        "diagnoses": note_diagnoses(note=note, language=get_language()),
        "addenda": note_addenda(note=note),
        "error": error,
        "is_author": note.author_id == request.user.pk,
        "language": get_language(),
    }
    if note.status == NoteStatus.DRAFT:
        context |= {
            "form": draft_form or NoteDraftForm.for_note(note),
            "sign_form": sign_form or SignForm(initial={"version": note.version}),
            "diagnosis_form": diagnosis_form or DiagnosisForm(),
            "icd_query": query,
            "icd_results": icd10_search(query=query, limit=ICD10_RESULTS) if query else [],
        }
        template = "care/note_editor.html"
    else:
        context |= {
            "addendum_form": addendum_form or AddendumForm(),
            "follow_up_day": _follow_up_day(note),
        }
        template = "care/note_signed.html"
    with timezone.override(clinic_zone(note.appointment.clinic)):
        return _no_store(render(request, template, context, status=status))


def _follow_up_day(note: ConsultNote) -> date | None:
    if not note.follow_up_after_days:
        return None
    zone = clinic_zone(note.appointment.clinic)
    start = max(note.appointment.starts_at, note.signed_at or note.appointment.starts_at)
    return (start.astimezone(zone) + timedelta(days=note.follow_up_after_days)).date()


@doctor_required
@require_http_methods(["GET", "POST"])
def note_editor(request: AuthedRequest, appointment_id: int) -> HttpResponse:
    """The appointment's note for its doctor. POST ``action``: ``start``,
    ``save`` (the draft, without JavaScript) or ``sign``."""
    appointment = appointment_get_for_note_author(user=request.user, appointment_id=appointment_id)
    existing = note_for_appointment(appointment=appointment)
    action = request.POST.get("action", "") if request.method == "POST" else ""
    if existing is None:
        if action != "start":
            with timezone.override(clinic_zone(appointment.clinic)):
                return _no_store(
                    render(
                        request, "care/note_start.html", {"appointment": appointment, "patient": appointment.patient}
                    )
                )
        try:
            consult_note_start(appointment=appointment, by=request.user)
        except NoteRefused as refused:
            messages.error(request, refused.message)
            return redirect("scheduling:detail", appointment.pk)
        return redirect("care:note_editor", appointment.pk)
    note = note_get_for_user(user=request.user, note_id=existing.pk)
    if action == "save":
        return _save(request, note)
    if action == "sign":
        return _sign(request, note)
    return _render_editor(request, note)


def _save(request: AuthedRequest, note: ConsultNote) -> HttpResponse:
    form = NoteDraftForm(request.POST)
    if not form.is_valid():
        return _render_editor(request, note, draft_form=form, status=400)
    try:
        consult_note_save_draft(
            note=note, by=request.user, fields=form.draft_fields(), version=form.cleaned_data["version"]
        )
    except NoteRefused as refused:
        if refused.field in form.fields:
            form.add_error(refused.field, refused.message)
            return _render_editor(request, note, draft_form=form, status=400)
        # Keep what the doctor typed on the page, with the reason it was not saved.
        return _render_editor(request, note, draft_form=form, error=refused.message, status=409)
    messages.success(request, _("Draft saved."))
    return redirect(_editor_url(note))


def _sign(request: AuthedRequest, note: ConsultNote) -> HttpResponse:
    form = SignForm(request.POST)
    if not form.is_valid():
        return _render_editor(request, note, sign_form=form, status=400)
    try:
        consult_note_sign(
            note=note,
            by=request.user,
            no_diagnosis=form.cleaned_data["no_diagnosis"],
            version=form.cleaned_data["version"],
        )
    except NoteRefused as refused:
        form.add_error(None, refused.message)
        return _render_editor(request, note, sign_form=form, status=409 if refused.code == "stale" else 400)
    messages.success(request, _("The note is signed. The patient is told their plan is ready."))
    return redirect(_editor_url(note))


@doctor_required
@require_GET
def note_detail(request: AuthedRequest, note_id: int) -> HttpResponse:
    """A note as a doctor who may read it sees it (the author is sent to the
    editor)."""
    note = note_get_for_user(user=request.user, note_id=note_id)
    if note.author_id == request.user.pk:
        return redirect(_editor_url(note))
    return _render_editor(request, note)


@doctor_required
@require_POST
def note_autosave(request: AuthedRequest, note_id: int) -> JsonResponse:
    """The editor's autosave: the draft's fields and ``version``; answers
    the new version (200), field errors (400) or a conflict (409)."""
    note = note_get_for_author(user=request.user, note_id=note_id)
    form = NoteDraftForm(request.POST)
    if not form.is_valid():
        errors = {field: [str(e) for e in errs] for field, errs in form.errors.items()}
        return JsonResponse({"error": _("Not saved: check the highlighted fields."), "fields": errors}, status=400)
    try:
        saved = consult_note_save_draft(
            note=note, by=request.user, fields=form.draft_fields(), version=form.cleaned_data["version"]
        )
    except NoteRefused as refused:
        status = 409 if refused.code in ("stale", "signed") else 400
        body: dict[str, Any] = {"error": refused.message, "code": refused.code}
        if refused.field:
            body["fields"] = {refused.field: [refused.message]}
        return JsonResponse(body, status=status)
    saved_at = timezone.localtime(saved.updated_at, clinic_zone(note.appointment.clinic))
    return JsonResponse({"version": saved.version, "saved_at": saved_at.strftime("%H:%M")})


@doctor_required
@require_POST
def note_diagnosis_add(request: AuthedRequest, note_id: int) -> HttpResponse:
    note = note_get_for_author(user=request.user, note_id=note_id)
    form = DiagnosisForm(request.POST)
    if form.is_valid():
        try:
            diagnosis_add(
                note=note, by=request.user, code=form.cleaned_data["code"], is_primary=form.cleaned_data["is_primary"]
            )
        except NoteRefused as refused:
            form.add_error("code", refused.message)
        else:
            return redirect(_editor_url(note, "diagnoses"))
    note = note_get_for_user(user=request.user, note_id=note.pk)
    return _render_editor(request, note, diagnosis_form=form, status=400)


@doctor_required
@require_POST
def note_diagnosis_remove(request: AuthedRequest, note_id: int, diagnosis_id: int) -> HttpResponse:
    note = note_get_for_author(user=request.user, note_id=note_id)
    try:
        diagnosis_remove(note=note, by=request.user, diagnosis_id=diagnosis_id)
    except NoteRefused as refused:
        messages.error(request, refused.message)
    return redirect(_editor_url(note, "diagnoses"))


@doctor_required
@require_POST
def note_addendum(request: AuthedRequest, note_id: int) -> HttpResponse:
    note = note_get_for_author(user=request.user, note_id=note_id)
    form = AddendumForm(request.POST)
    if form.is_valid():
        try:
            note_addendum_add(note=note, by=request.user, text=form.cleaned_data["text"])
        except NoteRefused as refused:
            form.add_error("text", refused.message)
        else:
            messages.success(request, _("Addendum signed and added."))
            return redirect(_editor_url(note, "addenda"))
    note = note_get_for_user(user=request.user, note_id=note.pk)
    return _render_editor(request, note, addendum_form=form, status=400)


@doctor_required
@require_POST
def problem_resolve(request: AuthedRequest, diagnosis_id: int) -> HttpResponse:
    diagnosis = diagnosis_get_for_resolver(user=request.user, diagnosis_id=diagnosis_id)
    try:
        diagnosis_resolve(diagnosis=diagnosis, by=request.user)
    except NoteRefused as refused:
        messages.error(request, refused.message)
    else:
        messages.success(request, _("The problem is marked resolved."))
    return redirect(reverse("care:chart", args=[diagnosis.patient_id]) + "#problems")


@doctor_required
@require_http_methods(["GET", "POST"])
def note_follow_up(request: AuthedRequest, note_id: int) -> HttpResponse:
    """Book the follow-up the note asks for: the doctor's free times at the
    appointment's clinic on a day (``?day=``, by default the note's
    follow-up day), then one click books it for the patient."""
    note = note_get_for_author(user=request.user, note_id=note_id)
    clinic = note.appointment.clinic
    zone = clinic_zone(clinic)
    today = timezone.now().astimezone(zone).date()
    suggested = _follow_up_day(note) or today + timedelta(days=7)
    error = ""
    if request.method == "POST":
        form = FollowUpForm(request.POST)
        if form.is_valid():
            try:
                appointment = note_follow_up_book(
                    note=note, by=request.user, starts_at=form.cleaned_data["starts_at"], mode=form.cleaned_data["mode"]
                )
            except BookingError as refused:
                error = refused.message
            else:
                messages.success(request, _("The follow-up is booked; the patient is told by SMS."))
                return redirect("scheduling:detail", appointment.pk)
        else:
            error = _("Choose a time from the list.")
    requested = date_param(request.GET.get("day") or request.POST.get("day"))
    free = doctor_free_day(doctor=request.user, clinic=clinic, day=requested or suggested, now=timezone.now())
    with timezone.override(zone):
        return _no_store(
            render(
                request,
                "care/note_follow_up.html",
                {
                    "note": note,
                    "patient": note.patient,
                    "day": free.day,
                    "previous_day": free.previous_day,
                    "next_day": free.next_day,
                    "slots": free.slots,
                    "error": error,
                },
                status=400 if error else 200,
            )
        )


@doctor_required
@require_GET
def icd10_search_view(request: AuthedRequest) -> JsonResponse:
    """``?q=`` → ``{"results": [{"code", "description", "label"}…]}``,
    labels in the request's language."""
    query = request.GET.get("q", "")[:QUERY_MAX_LENGTH]
    language = get_language()
    results = [code.as_json(language) for code in icd10_search(query=query, limit=ICD10_RESULTS)]
    response = JsonResponse({"results": results})
    response["Cache-Control"] = "private, max-age=3600"
    return response
