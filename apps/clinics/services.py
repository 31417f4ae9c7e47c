"""Writes of clinics, memberships and invitations."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation

from apps.accounts.models import Language, User
from apps.audit.models import AuditAction
from apps.audit.services import audit_record
from apps.clinics.models import Clinic, Invitation, Membership, Role
from apps.clinics.selectors import invitation_token_hash
from apps.notifications.models import Category, Channel
from apps.notifications.services import notification_send, notification_send_to_address

INVITATION_VALID_FOR = timedelta(days=7)


class InvitationError(Exception):
    pass


def invitation_link(token: str) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("invitation_accept", args=[token])


def invitation_create(
    *, clinic: Clinic, role: str, invited_by: User, email: str = "", phone: str = "", full_name: str = ""
) -> tuple[Invitation, str]:
    """Create an invitation and send its link by email or SMS (after commit).

    Returns the invitation and the raw token (only its hash is stored)."""
    if not email and not phone:
        raise InvitationError("an invitation needs an email address or a phone number")
    token = secrets.token_urlsafe(16)  # 128 bits; short enough for one SMS
    with transaction.atomic():
        invitation = Invitation.objects.create(
            clinic=clinic,
            role=role,
            email=email,
            phone=phone,
            full_name=full_name,
            token_hash=invitation_token_hash(token),
            invited_by=invited_by,
            expires_at=timezone.now() + INVITATION_VALID_FOR,
        )
        audit_record(
            action=AuditAction.CREATE,
            actor=invited_by,
            object_type="invitation",
            object_id=invitation.pk,
            clinic_id=clinic.pk,
        )
        _invitation_deliver(invitation, token)
    return invitation, token


def _invitation_deliver(invitation: Invitation, token: str) -> None:
    """The link goes out by email and/or SMS through the outbox, in the
    language the admin is using (the invitee has no account yet)."""
    language = Language.ZH_HANS if (translation.get_language() or "").startswith("zh") else Language.EN
    with translation.override(language):
        role = str(invitation.get_role_display())
    context = {
        "clinic": invitation.clinic.name,
        "role": role,
        "link": invitation_link(token),
        "days": INVITATION_VALID_FOR.days,
    }
    for channel, address in ((Channel.EMAIL, invitation.email), (Channel.SMS, invitation.phone)):
        if address:
            notification_send_to_address(
                channel=channel,
                destination=address,
                category=Category.ACCOUNT,
                template="account/staff_invitation",
                context=context,
                language=language,
                idempotency_key=f"invitation:{invitation.pk}",
                clinic_id=invitation.clinic_id,
                sensitive=True,
            )


def invitation_revoke(*, invitation: Invitation, actor: User) -> None:
    with transaction.atomic():
        Invitation.objects.filter(pk=invitation.pk).update(revoked_at=timezone.now())
        audit_record(
            action=AuditAction.DELETE,
            actor=actor,
            object_type="invitation",
            object_id=invitation.pk,
            clinic_id=invitation.clinic_id,
        )


def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    """Join the invitation's clinic in its role. Idempotent for a member."""
    with transaction.atomic():
        locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if not locked.is_usable():
            raise InvitationError("this invitation can no longer be used")
        membership, _created = Membership.objects.get_or_create(
            user=user, clinic=locked.clinic, role=locked.role, defaults={"is_active": True}
        )
        if not membership.is_active:
            membership.is_active = True
            membership.save(update_fields=["is_active"])
        if locked.role == Role.DOCTOR:
            from apps.clinics.models import DoctorProfile

            DoctorProfile.objects.get_or_create(user=user)
        locked.accepted_at = timezone.now()
        locked.accepted_by = user
        locked.save(update_fields=["accepted_at", "accepted_by"])
        with translation.override(locked.invited_by.language):
            role = str(locked.get_role_display())
        notification_send(
            recipient=locked.invited_by,
            category=Category.ACCOUNT,
            template="account/invitation_accepted",
            context={
                "name": user.full_name,
                "clinic": locked.clinic.name,
                "role": role,
                "link": reverse("clinics:staff", args=[locked.clinic_id]),
            },
            idempotency_key=f"invitation-accepted:{locked.pk}",
            channels=[Channel.IN_APP],
            clinic_id=locked.clinic_id,
        )
        audit_record(
            action=AuditAction.CREATE,
            actor=user,
            object_type="membership",
            object_id=membership.pk,
            clinic_id=locked.clinic_id,
        )
    return membership
