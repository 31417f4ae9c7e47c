"""Reads of accounts and patient records, with the access rules of
DESIGN.md. A record the caller may not see is "not found" (Http404)."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404

from apps.accounts.models import Consent, ConsentKind, PatientProfile, User
from apps.audit.models import AuditAction
from apps.audit.services import audit_access_denied, audit_record


def patient_can_be_seen_by(*, user: User, patient: User) -> bool:
    """One condition per line, so that coverage shows every rule is tested
    (docs/care-access.md). The care rules live in apps/care/selectors.py."""
    from apps.care.selectors import break_glass_gives_access, care_team_gives_access, referral_gives_access

    if not user.is_authenticated:
        return False
    if user.pk == patient.pk:
        return True
    if _shares_an_appointment(doctor=user, patient=patient):
        return True
    if referral_gives_access(doctor=user, patient=patient):
        return True
    if care_team_gives_access(doctor=user, patient=patient):
        return True
    if break_glass_gives_access(doctor=user, patient=patient):  # noqa: SIM103  # one rule per line
        return True
    return False


def patient_can_be_seen_by_doctor(*, user: User, patient: User) -> bool:
    """Whether ``user`` is a doctor who sees ``patient``'s record: who may act
    on it as one of their doctors (targets, alerts, referrals, messages, the
    problem list), the patient themself only as a patient."""
    from apps.clinics.selectors import UserRole, user_roles

    if UserRole.DOCTOR not in user_roles(user=user):
        return False
    return patient_can_be_seen_by(user=user, patient=patient)


def _shares_an_appointment(*, doctor: User, patient: User) -> bool:
    """A doctor sees the record of a patient they have an appointment with,
    past or future (a cancelled one doesn't count)."""
    from apps.scheduling.models import Appointment, AppointmentStatus

    return (
        Appointment.objects.filter(doctor=doctor, patient=patient).exclude(status=AppointmentStatus.CANCELLED).exists()
    )


def patient_get_for_user(*, user: User, patient_id: int) -> User:
    patient = User.objects.filter(pk=patient_id, patient_profile__isnull=False).first()
    if patient is None or not patient_can_be_seen_by(user=user, patient=patient):
        audit_access_denied(actor=user, object_type="patient", object_id=patient_id)
        raise Http404
    return patient


def patient_profile_get_for_user(*, user: User, patient_id: int) -> PatientProfile:
    """The patient's profile, audited as a read of personal data."""
    patient = patient_get_for_user(user=user, patient_id=patient_id)
    profile = PatientProfile.objects.select_related("user").get(user=patient)
    audit_record(
        action=AuditAction.VIEW, actor=user, object_type="patient_profile", object_id=profile.pk, patient=patient
    )
    return profile


def consent_active(*, patient: User, kind: str = ConsentKind.HEALTH_DATA) -> Consent | None:
    return Consent.objects.filter(patient=patient, kind=kind, withdrawn_at__isnull=True).first()


def consent_is_current(*, patient: User) -> bool:
    """True when the patient consents to the current version of the text:
    readings, uploads and booking all require it."""
    consent = consent_active(patient=patient)
    return consent is not None and consent.version == settings.HEALTH_DATA_CONSENT_VERSION


def consent_history(*, patient: User) -> QuerySet[Consent]:
    return Consent.objects.filter(patient=patient).order_by("-given_at")
