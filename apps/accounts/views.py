from __future__ import annotations

import contextlib
from typing import Any

from allauth.account.views import SignupView as AllauthSignupView
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.decorators import patient_required
from apps.accounts.forms import AccessTokenForm, ConsentForm, PatientProfileForm, PreferencesForm
from apps.accounts.selectors import consent_active, consent_history, patient_profile_get_for_user
from apps.accounts.services import (
    ConsentError,
    consent_give,
    consent_withdraw,
    patient_profile_update,
    user_preferences_update,
)
from apps.accounts.tokens import token_create, token_revoke
from apps.clinics.selectors import UserRole, user_roles
from apps.core.http import AuthedRequest


class SignupView(AllauthSignupView):
    """allauth's sign-up, told which path (phone or email) the visitor chose."""

    def get_form_kwargs(self) -> dict[str, Any]:
        kwargs = super().get_form_kwargs()
        kwargs["method"] = self.request.GET.get("method")
        return kwargs


signup = SignupView.as_view()


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: AuthedRequest) -> HttpResponse:
    user = request.user
    is_patient = UserRole.PATIENT in user_roles(user=user)
    patient_profile = patient_profile_get_for_user(user=user, patient_id=user.pk) if is_patient else None
    prefs_form = PreferencesForm(request.POST if request.method == "POST" else None, instance=user, prefix="prefs")
    profile_form = (
        PatientProfileForm(
            request.POST if request.method == "POST" else None, instance=patient_profile, prefix="profile"
        )
        if is_patient
        else None
    )
    if request.method == "POST":
        forms_valid = prefs_form.is_valid() and (profile_form is None or profile_form.is_valid())
        if forms_valid:
            # Read the cleaned values, then write both in one transaction from
            # fresh objects so a failure leaves nothing half-saved.
            prefs = {name: prefs_form.cleaned_data[name] for name in PreferencesForm.Meta.fields}
            with transaction.atomic():
                user.refresh_from_db()
                user_preferences_update(user=user, actor=user, data=prefs)
                if profile_form is not None and patient_profile is not None:
                    details = {name: profile_form.cleaned_data[name] for name in PatientProfileForm.Meta.fields}
                    patient_profile.refresh_from_db()
                    patient_profile_update(profile=patient_profile, actor=user, data=details)
            translation.activate(user.language)
            messages.success(request, _("Your details are saved."))
            return redirect("accounts:profile")
        user.refresh_from_db()
    return render(
        request,
        "accounts/profile.html",
        {"prefs_form": prefs_form, "profile_form": profile_form, "is_patient": is_patient},
    )


@patient_required
@require_http_methods(["GET", "POST"])
def consent(request: AuthedRequest) -> HttpResponse:
    patient = request.user
    form = ConsentForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        # ConsentError: a concurrent request recorded it first; the page shows it.
        with contextlib.suppress(ConsentError):
            consent_give(patient=patient, given_by=patient)
        messages.success(request, _("Thank you. Your consent is recorded."))
        return redirect("accounts:consent")
    return render(
        request,
        "accounts/consent.html",
        {
            "form": form,
            "active": consent_active(patient=patient),
            "history": consent_history(patient=patient),
        },
    )


@patient_required
@require_POST
def consent_withdraw_view(request: AuthedRequest) -> HttpResponse:
    try:
        consent_withdraw(patient=request.user, withdrawn_by=request.user)
    except ConsentError:
        messages.error(request, _("You have no active consent to withdraw."))
    else:
        messages.success(
            request,
            _("Your consent is withdrawn. Telemed will not process new health data of yours until you consent again."),
        )
    return redirect("accounts:consent")


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: AuthedRequest) -> HttpResponse:
    form = AccessTokenForm(request.POST if request.method == "POST" else None)
    new_token = None
    if request.method == "POST" and form.is_valid():
        _, new_token = token_create(
            user=request.user,
            name=form.cleaned_data["name"],
            expires_in_days=form.cleaned_data["expires_in_days"] or None,
        )
        form = AccessTokenForm()
    return render(
        request,
        "accounts/tokens.html",
        {"form": form, "tokens": request.user.access_tokens.all(), "new_token": new_token},
    )


@login_required
@require_POST
def token_revoke_view(request: AuthedRequest, token_id: int) -> HttpResponse:
    token = request.user.access_tokens.filter(pk=token_id).first()
    if token is None:
        raise Http404
    token_revoke(token=token, by=request.user)
    messages.success(request, _("The token is revoked."))
    return redirect("accounts:tokens")
