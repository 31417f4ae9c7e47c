"""Reads of clinics, memberships and roles, with their access checks."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet
from django.http import Http404

from apps.clinics.models import Clinic, Invitation, Membership, Role

if TYPE_CHECKING:
    from apps.accounts.models import User


class UserRole:
    PATIENT = "patient"
    DOCTOR = "doctor"
    CLINIC_ADMIN = "clinic_admin"
    SITE_ADMIN = "site_admin"


def user_roles(*, user: Any) -> frozenset[str]:
    """Every role the user holds, computed once per user object (request)."""
    if user is None or not user.is_authenticated:
        return frozenset()
    cached = getattr(user, _ROLES_CACHE, None)
    if cached is not None:
        return cached
    member_roles = set(_active_memberships(user_id=user.pk).values_list("role", flat=True))
    return user_roles_remember(
        user=user,
        doctor=Role.DOCTOR in member_roles,
        clinic_admin=bool(member_roles - {Role.DOCTOR}),
    )


_ROLES_CACHE = "_telemed_roles"


def _active_memberships(*, user_id: int) -> QuerySet[Membership]:
    return Membership.objects.filter(user_id=user_id, is_active=True, clinic__is_active=True)


def user_roles_known(*, user: Any) -> bool:
    """Whether ``user_roles`` answers without a query for this user object."""
    return user is None or not user.is_authenticated or getattr(user, _ROLES_CACHE, None) is not None


def user_roles_remember(*, user: Any, doctor: bool, clinic_admin: bool) -> frozenset[str]:
    """``user_roles`` from the user's active memberships (in active clinics)
    read along with something else: whether any makes them a doctor, whether
    any makes them a clinic admin (any other role)."""
    roles: set[str] = set()
    if user.is_superuser or user.is_staff:
        roles.add(UserRole.SITE_ADMIN)
    if doctor:
        roles.add(UserRole.DOCTOR)
    if clinic_admin:
        roles.add(UserRole.CLINIC_ADMIN)
    if user_is_patient(user=user):
        roles.add(UserRole.PATIENT)
    result = frozenset(roles)
    setattr(user, _ROLES_CACHE, result)
    return result


def user_is_patient(*, user: Any) -> bool:
    """A patient has a patient profile (the API's token lookup reads it with the user)."""
    return hasattr(user, "patient_profile")


def user_is_staff_member(*, user: Any) -> bool:
    """Doctors, clinic admins and site admins: MFA and short sessions apply."""
    return bool(user_roles(user=user) & {UserRole.DOCTOR, UserRole.CLINIC_ADMIN, UserRole.SITE_ADMIN})


def user_role_label(*, user: Any) -> str:
    """The user's most privileged role, for the audit log."""
    roles = user_roles(user=user)
    for role in (UserRole.SITE_ADMIN, UserRole.CLINIC_ADMIN, UserRole.DOCTOR, UserRole.PATIENT):
        if role in roles:
            return role
    return ""


def clinics_administered_by(*, user: User) -> QuerySet[Clinic]:
    return Clinic.objects.filter(
        is_active=True, memberships__user=user, memberships__role=Role.ADMIN, memberships__is_active=True
    ).distinct()


def clinics_of_doctor(*, user: User) -> QuerySet[Clinic]:
    return Clinic.objects.filter(
        is_active=True, memberships__user=user, memberships__role=Role.DOCTOR, memberships__is_active=True
    ).distinct()


def clinic_get_for_admin(*, user: User, clinic_id: int) -> Clinic:
    """The clinic, if ``user`` administers it; otherwise "not found"."""
    try:
        return clinics_administered_by(user=user).get(pk=clinic_id)
    except Clinic.DoesNotExist:
        raise Http404 from None


def clinic_members(*, clinic: Clinic) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(clinic=clinic, is_active=True)
        .select_related("user")
        .order_by("role", "user__full_name")
    )


def clinic_open_invitations(*, clinic: Clinic) -> QuerySet[Invitation]:
    return clinic.invitations.filter(accepted_at__isnull=True, revoked_at__isnull=True).select_related("invited_by")


def invitation_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_get_usable(*, token: str) -> Invitation:
    """The invitation behind a link, if it can still be accepted; else 404."""
    invitation = Invitation.objects.select_related("clinic").filter(token_hash=invitation_token_hash(token)).first()
    if invitation is None:
        raise Http404
    if not invitation.is_usable():
        raise Http404
    return invitation
