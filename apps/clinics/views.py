from __future__ import annotations

from allauth.account.models import EmailAddress
from allauth.account.utils import perform_login
from django.contrib import messages
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.decorators import role_required
from apps.accounts.models import Language, User
from apps.clinics.forms import InvitationAccountForm, InvitationForm
from apps.clinics.models import Invitation
from apps.clinics.selectors import (
    UserRole,
    clinic_get_for_admin,
    clinic_members,
    clinic_open_invitations,
    invitation_get_usable,
)
from apps.clinics.services import InvitationError, invitation_accept, invitation_create, invitation_revoke
from apps.core.http import AuthedRequest


@role_required(UserRole.CLINIC_ADMIN)
@require_http_methods(["GET", "POST"])
def staff(request: AuthedRequest, clinic_id: int) -> HttpResponse:
    clinic = clinic_get_for_admin(user=request.user, clinic_id=clinic_id)
    form = InvitationForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        invitation_create(
            clinic=clinic,
            role=form.cleaned_data["role"],
            invited_by=request.user,
            email=form.cleaned_data["email"],
            phone=form.cleaned_data["phone"],
            full_name=form.cleaned_data["full_name"],
        )
        messages.success(request, _("Invitation sent."))
        return redirect("clinics:staff", clinic_id=clinic.pk)
    return render(
        request,
        "clinics/staff.html",
        {
            "clinic": clinic,
            "members": clinic_members(clinic=clinic),
            "invitations": clinic_open_invitations(clinic=clinic),
            "form": form,
        },
    )


@role_required(UserRole.CLINIC_ADMIN)
@require_POST
def invitation_revoke_view(request: AuthedRequest, clinic_id: int, invitation_id: int) -> HttpResponse:
    clinic = clinic_get_for_admin(user=request.user, clinic_id=clinic_id)
    invitation = clinic_open_invitations(clinic=clinic).filter(pk=invitation_id).first()
    if invitation is None:
        raise Http404
    invitation_revoke(invitation=invitation, actor=request.user)
    messages.success(request, _("Invitation withdrawn."))
    return redirect("clinics:staff", clinic_id=clinic.pk)


def _invitation_matches(invitation: Invitation, user: User) -> bool:
    return bool(
        (invitation.email and user.email and invitation.email.lower() == user.email.lower())
        or (invitation.phone and user.phone == invitation.phone)
    )


@require_http_methods(["GET", "POST"])
def invitation_accept_view(request: HttpRequest, token: str) -> HttpResponse:
    invitation = invitation_get_usable(token=token)
    user = request.user
    if user.is_authenticated:
        if not _invitation_matches(invitation, user):
            return render(request, "clinics/invitation_other_account.html", {"invitation": invitation}, status=403)
        if request.method == "POST":
            try:
                invitation_accept(invitation=invitation, user=user)
            except InvitationError:
                raise Http404 from None
            messages.success(request, _("You have joined %(clinic)s.") % {"clinic": invitation.clinic.name})
            return redirect("core:home")
        return render(request, "clinics/invitation_accept.html", {"invitation": invitation})

    existing = User.objects.filter(email=invitation.email or None).first() if invitation.email else None
    existing = existing or (User.objects.filter(phone=invitation.phone).first() if invitation.phone else None)
    if existing is not None:
        # They have an account: sign in first, then come back here.
        return render(request, "clinics/invitation_sign_in.html", {"invitation": invitation, "token": token})

    form = InvitationAccountForm(
        request.POST if request.method == "POST" else None,
        email=invitation.email,
        phone=invitation.phone,
        initial={"full_name": invitation.full_name},
    )
    if request.method == "POST" and form.is_valid():
        language = Language.ZH_HANS if (request.LANGUAGE_CODE or "").startswith("zh") else Language.EN
        try:
            with transaction.atomic():
                new_user = User.objects.create_user(
                    email=invitation.email or None,
                    phone=invitation.phone or None,
                    password=form.cleaned_data["password1"],
                    full_name=form.cleaned_data["full_name"],
                    language=language,
                    phone_verified=bool(invitation.phone),
                )
                if invitation.email:
                    # The link reached this address: that verifies it.
                    EmailAddress.objects.create(user=new_user, email=invitation.email, verified=True, primary=True)
                invitation_accept(invitation=invitation, user=new_user)
        except (IntegrityError, InvitationError):
            raise Http404 from None
        messages.success(request, _("Welcome. Set up two-factor authentication to finish."))
        # allauth's login records how they authenticated, so MFA enrolment
        # right after doesn't ask for the password again.
        return perform_login(request, new_user, redirect_url=reverse("mfa_activate_totp"))
    return render(request, "clinics/invitation_signup.html", {"invitation": invitation, "form": form})
