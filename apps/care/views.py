"""Pages of the care team, break-glass and referrals. Thin: the selectors
decide who sees what ("not found" otherwise), the services who may change
what; both audit."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.decorators import patient_required, role_required
from apps.accounts.models import User
from apps.accounts.selectors import patient_can_be_seen_by, patient_can_be_seen_by_doctor, patient_get_for_user
from apps.audit.models import AuditAction
from apps.audit.services import AuditEntry, audit_access_denied, audit_record, audit_record_many
from apps.care.forms import BreakGlassForm, CareTeamAddForm, ReferralDeclineForm, ReferralForm
from apps.care.models import REFERRAL_ACCESS_STATUSES, Referral, ReferralStatus
from apps.care.selectors import (
    break_glass_for_clinic,
    break_glass_get_for_doctor,
    care_team_clinics_for_user,
    care_team_membership_get_for_user,
    care_team_of_patient,
    patient_find_for_break_glass,
    referral_can_be_accepted_by,
    referral_get_for_user,
    referrals_for_doctor,
    referrals_made_by,
    referrals_of_patient,
)
from apps.care.services import (
    CareRefused,
    break_glass_end,
    break_glass_open,
    care_team_add,
    care_team_remove,
    referral_accept,
    referral_booking_link,
    referral_cancel,
    referral_complete,
    referral_create,
    referral_decline,
)
from apps.clinics.models import Role
from apps.clinics.selectors import UserRole, clinic_get_for_admin
from apps.core.http import AuthedRequest

doctor_required = role_required(UserRole.DOCTOR)
staff_required = role_required(UserRole.DOCTOR, UserRole.CLINIC_ADMIN)

BREAK_GLASS_PAGE = 50


def _audit_referrals(viewer: User, referrals: Iterable[Referral]) -> None:
    audit_record_many(
        actor=viewer,
        entries=[AuditEntry(AuditAction.VIEW, "referral", r.pk, patient=r.patient) for r in referrals],
    )


# --- Care team -------------------------------------------------------------------


@staff_required
@require_http_methods(["GET", "POST"])
def care_team(request: AuthedRequest, patient_id: int) -> HttpResponse:
    """The patient's care team, and adding a doctor of one's clinic to it."""
    patient = User.objects.filter(pk=patient_id, patient_profile__isnull=False).first()
    clinics = care_team_clinics_for_user(user=request.user, patient=patient) if patient else None
    if patient is None or clinics is None or not clinics.exists():
        audit_access_denied(actor=request.user, object_type="care_team", object_id=patient_id)
        raise Http404
    team = list(care_team_of_patient(patient=patient))
    doctors = (
        User.objects.filter(
            memberships__clinic__in=clinics, memberships__role=Role.DOCTOR, memberships__is_active=True, is_active=True
        )
        .exclude(pk__in=[patient.pk, *(m.doctor_id for m in team)])
        .distinct()
        .order_by("full_name")
    )
    form = CareTeamAddForm(request.POST or None, clinics=clinics, doctors=doctors)
    if request.method == "POST" and form.is_valid():
        try:
            care_team_add(
                patient=patient, doctor=form.cleaned_data["doctor"], clinic=form.cleaned_data["clinic"], by=request.user
            )
        except CareRefused as refused:
            form.add_error(None, refused.message)
        else:
            messages.success(request, _("The doctor is on the care team."))
            return redirect("care:care_team", patient_id=patient.pk)
    audit_record(
        action=AuditAction.VIEW, actor=request.user, object_type="care_team", object_id="list", patient=patient
    )
    return render(
        request,
        "care/care_team.html",
        {
            "patient": patient,
            "team": team,
            "form": form,
            "can_see_chart": patient_can_be_seen_by_doctor(user=request.user, patient=patient),
        },
    )


@staff_required
@require_POST
def care_team_remove_view(request: AuthedRequest, membership_id: int) -> HttpResponse:
    membership = care_team_membership_get_for_user(user=request.user, membership_id=membership_id)
    try:
        care_team_remove(membership=membership, by=request.user)
    except CareRefused as refused:
        messages.error(request, refused.message)
    else:
        messages.success(request, _("The doctor is no longer on the care team."))
    if care_team_clinics_for_user(user=request.user, patient=membership.patient).exists():
        return redirect("care:care_team", patient_id=membership.patient_id)
    return redirect("core:home")


# --- Break-glass -----------------------------------------------------------------


@doctor_required
@require_http_methods(["GET", "POST"])
def break_glass(request: AuthedRequest) -> HttpResponse:
    """Emergency access to a patient with no relation to the doctor: the
    exact phone number or patient number, and a reason."""
    form = BreakGlassForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        wanted = form.cleaned_data["patient"]
        patient = patient_find_for_break_glass(patient_id=wanted.get("id"), phone=wanted.get("phone"))
        if patient is None:
            audit_access_denied(actor=request.user, object_type="break_glass", object_id="not_found")
            form.add_error("patient", _("No patient has this phone number or patient number."))
        elif patient_can_be_seen_by(user=request.user, patient=patient) and patient.pk != request.user.pk:
            messages.info(request, _("You already have access to this patient's record."))
            return redirect("care:chart", patient_id=patient.pk)
        else:
            try:
                break_glass_open(doctor=request.user, patient=patient, reason=form.cleaned_data["reason"])
            except CareRefused as refused:
                form.add_error(None, refused.message)
            else:
                messages.warning(
                    request, _("Emergency access opened for 12 hours. Your clinic's admins can see it and why.")
                )
                return redirect("care:chart", patient_id=patient.pk)
    return render(request, "care/break_glass.html", {"form": form})


@doctor_required
@require_POST
def break_glass_end_view(request: AuthedRequest, access_id: int) -> HttpResponse:
    access = break_glass_get_for_doctor(doctor=request.user, access_id=access_id)
    break_glass_end(access=access, by=request.user)
    messages.success(request, _("Emergency access ended."))
    return redirect("care:dashboard")


@role_required(UserRole.CLINIC_ADMIN)
@require_GET
def break_glass_clinic(request: AuthedRequest, clinic_id: int) -> HttpResponse:
    """The clinic admin's review of their doctors' emergency accesses."""
    clinic = clinic_get_for_admin(user=request.user, clinic_id=clinic_id)
    page = Paginator(break_glass_for_clinic(clinic=clinic), BREAK_GLASS_PAGE).get_page(request.GET.get("page"))
    audit_record_many(
        actor=request.user,
        entries=[
            AuditEntry(AuditAction.VIEW, "break_glass", access.pk, patient=access.patient, clinic_id=clinic.pk)
            for access in page
        ],
    )
    return render(request, "care/break_glass_clinic.html", {"clinic": clinic, "page": page, "now": timezone.now()})


# --- Referrals -------------------------------------------------------------------


@doctor_required
@require_http_methods(["GET", "POST"])
def referral_new(request: AuthedRequest, patient_id: int) -> HttpResponse:
    patient = patient_get_for_user(user=request.user, patient_id=patient_id)
    form = ReferralForm(request.POST or None, exclude=[request.user.pk, patient.pk])
    if request.method == "POST" and form.is_valid():
        try:
            referral = referral_create(
                patient=patient,
                from_doctor=request.user,
                to_doctor=form.cleaned_data["to_doctor"],
                to_specialty=form.cleaned_data["to_specialty"],
                urgency=form.cleaned_data["urgency"],
                reason=form.cleaned_data["reason"],
            )
        except CareRefused as refused:
            form.add_error(None, refused.message)
        else:
            messages.success(request, _("Referral sent. The patient is invited to book."))
            return redirect("care:referral_detail", referral_id=referral.pk)
    return render(request, "care/referral_form.html", {"patient": patient, "form": form})


@doctor_required
@require_GET
def referrals(request: AuthedRequest) -> HttpResponse:
    """The doctor's referrals: received (open and booked), and sent."""
    received = list(referrals_for_doctor(doctor=request.user, statuses=tuple(REFERRAL_ACCESS_STATUSES))[:100])
    sent = list(referrals_made_by(doctor=request.user)[:50])
    _audit_referrals(request.user, [*received, *sent])
    return render(request, "care/referrals.html", {"received": received, "sent": sent})


@patient_required
@require_GET
def my_referrals(request: AuthedRequest) -> HttpResponse:
    """The patient's referrals: who referred them where, and a way to book."""
    rows = [
        (referral, referral_booking_link(referral=referral))
        for referral in referrals_of_patient(patient=request.user)[:100]
    ]
    return render(request, "care/my_referrals.html", {"rows": rows, "open": ReferralStatus.OPEN})


@login_required
@require_GET
def referral_detail(request: AuthedRequest, referral_id: int) -> HttpResponse:
    referral = referral_get_for_user(user=request.user, referral_id=referral_id)
    me = request.user.pk
    receiving = referral.to_doctor_id == me and referral.status in REFERRAL_ACCESS_STATUSES
    context = {
        "referral": referral,
        "is_patient": referral.patient_id == me,
        "booking_link": referral_booking_link(referral=referral),
        "can_accept": referral_can_be_accepted_by(user=request.user, referral=referral),
        "can_decline": receiving,
        "can_complete": receiving,
        "can_cancel": referral.from_doctor_id == me and referral.status in REFERRAL_ACCESS_STATUSES,
        "can_see_chart": referral.patient_id != me
        and patient_can_be_seen_by_doctor(user=request.user, patient=referral.patient),
        "decline_form": ReferralDeclineForm(),
        "open": ReferralStatus.OPEN,
    }
    return render(request, "care/referral_detail.html", context)


def _referral_action(request: AuthedRequest, referral_id: int, action: str) -> HttpResponse:
    referral = referral_get_for_user(user=request.user, referral_id=referral_id)
    try:
        if action == "accept":
            referral_accept(referral=referral, by=request.user)
            messages.success(request, _("The referral is yours. The patient is invited to book with you."))
        elif action == "complete":
            referral_complete(referral=referral, by=request.user)
            messages.success(request, _("Referral completed."))
        elif action == "cancel":
            referral_cancel(referral=referral, by=request.user)
            messages.success(request, _("Referral withdrawn."))
        else:
            form = ReferralDeclineForm(request.POST)
            if not form.is_valid():
                messages.error(request, _("Say why you decline the referral."))
                return redirect("care:referral_detail", referral_id=referral.pk)
            referral_decline(referral=referral, by=request.user, reason=form.cleaned_data["reason"])
            messages.success(request, _("Referral declined. The referring doctor is told."))
    except CareRefused as refused:
        messages.error(request, refused.message)
    return redirect("care:referral_detail", referral_id=referral.pk)


@doctor_required
@require_POST
def referral_accept_view(request: AuthedRequest, referral_id: int) -> HttpResponse:
    return _referral_action(request, referral_id, "accept")


@doctor_required
@require_POST
def referral_decline_view(request: AuthedRequest, referral_id: int) -> HttpResponse:
    return _referral_action(request, referral_id, "decline")


@doctor_required
@require_POST
def referral_complete_view(request: AuthedRequest, referral_id: int) -> HttpResponse:
    return _referral_action(request, referral_id, "complete")


@doctor_required
@require_POST
def referral_cancel_view(request: AuthedRequest, referral_id: int) -> HttpResponse:
    return _referral_action(request, referral_id, "cancel")
