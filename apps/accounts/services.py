"""Writes of accounts, patient profiles and consent. Each write of personal
or health data records an audit event in the same transaction."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import Consent, ConsentKind, PatientProfile, User
from apps.audit.models import AuditAction
from apps.audit.services import audit_record


class ConsentError(Exception):
    pass


def patient_signup_complete(*, user: User) -> PatientProfile:
    """A new sign-up becomes a patient with an empty profile."""
    from apps.notifications.models import Category, Channel
    from apps.notifications.services import notification_send

    with transaction.atomic():
        profile, _ = PatientProfile.objects.get_or_create(user=user)
        notification_send(
            recipient=user,
            category=Category.ACCOUNT,
            template="account/welcome",
            context={"link": "/me/consent/"},
            idempotency_key=f"welcome:{user.pk}",
            channels=[Channel.IN_APP],
        )
        audit_record(
            action=AuditAction.CREATE,
            actor=user,
            object_type="patient_profile",
            object_id=profile.pk,
            patient=user,
            role="patient",
        )
    return profile


def user_preferences_update(*, user: User, actor: User, data: dict[str, Any]) -> User:
    allowed = {"full_name", "language", "timezone"}
    changed = [name for name in allowed if name in data and getattr(user, name) != data[name]]
    if not changed:
        return user
    with transaction.atomic():
        for name in changed:
            setattr(user, name, data[name])
        user.full_clean(validate_unique=False, exclude=["password", "email", "phone"])
        user.save(update_fields=changed)
        audit_record(
            action=AuditAction.UPDATE,
            actor=actor,
            object_type="user",
            object_id=user.pk,
            patient=user if hasattr(user, "patient_profile") else None,
        )
    return user


def patient_profile_update(*, profile: PatientProfile, actor: User, data: dict[str, Any]) -> PatientProfile:
    changed = [name for name, value in data.items() if getattr(profile, name) != value]
    if not changed:
        return profile
    with transaction.atomic():
        for name in changed:
            setattr(profile, name, data[name])
        profile.full_clean()
        profile.save(update_fields=[*changed, "updated_at"])
        audit_record(
            action=AuditAction.UPDATE,
            actor=actor,
            object_type="patient_profile",
            object_id=profile.pk,
            patient=profile.user,
        )
    return profile


def consent_give(
    *, patient: User, given_by: User, kind: str = ConsentKind.HEALTH_DATA, version: str | None = None
) -> Consent:
    """Record an explicit consent. Giving it again while active changes nothing."""
    version = version or settings.HEALTH_DATA_CONSENT_VERSION
    with transaction.atomic():
        existing = (
            Consent.objects.select_for_update().filter(patient=patient, kind=kind, withdrawn_at__isnull=True).first()
        )
        if existing is not None and existing.version == version:
            return existing
        now = timezone.now()
        if existing is not None:
            # A newer text replaces the older consent.
            existing.withdrawn_at = now
            existing.withdrawn_by = given_by
            existing.save(update_fields=["withdrawn_at", "withdrawn_by"])
        try:
            consent = Consent.objects.create(
                patient=patient, kind=kind, version=version, given_at=now, given_by=given_by
            )
        except IntegrityError as exc:  # a concurrent request gave it first
            raise ConsentError("consent was recorded by another request") from exc
        audit_record(
            action=AuditAction.CREATE, actor=given_by, object_type="consent", object_id=consent.pk, patient=patient
        )
    return consent


def consent_withdraw(*, patient: User, withdrawn_by: User, kind: str = ConsentKind.HEALTH_DATA) -> Consent:
    with transaction.atomic():
        consent = (
            Consent.objects.select_for_update().filter(patient=patient, kind=kind, withdrawn_at__isnull=True).first()
        )
        if consent is None:
            raise ConsentError("there is no active consent to withdraw")
        consent.withdrawn_at = timezone.now()
        consent.withdrawn_by = withdrawn_by
        consent.save(update_fields=["withdrawn_at", "withdrawn_by"])
        audit_record(
            action=AuditAction.UPDATE,
            actor=withdrawn_by,
            object_type="consent",
            object_id=consent.pk,
            patient=patient,
            reason="withdrawn",
        )
    return consent


def patient_register_by_staff(*, full_name: str, phone: str, language: str, registered_by: User) -> User:
    """A clinic registers a patient who can't sign up alone (no smartphone,
    no email): an account by phone number, without a password. The patient
    can later sign in with an SMS code, which verifies the number."""
    with transaction.atomic():
        user = User.objects.create_user(phone=phone, full_name=full_name, language=language)
        profile = PatientProfile.objects.create(user=user)
        audit_record(
            action=AuditAction.CREATE,
            actor=registered_by,
            object_type="patient_profile",
            object_id=profile.pk,
            patient=user,
            reason="registered by clinic staff",
        )
    return user
