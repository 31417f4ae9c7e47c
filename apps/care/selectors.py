"""Reads of care teams, break-glass accesses and referrals, and the care
side of the access rules (docs/care-access.md).

``patient_can_be_seen_by`` (apps/accounts/selectors.py) asks the one-row
questions here (``referral_gives_access``, ``care_team_gives_access``,
``break_glass_gives_access``); ``patients_of_doctor`` asks the same of many
patients at once, for lists, in one query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Case, Exists, IntegerField, OuterRef, Q, QuerySet, Value, When
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import PatientProfile, User
from apps.audit.models import AuditAction
from apps.audit.services import audit_access_denied, audit_record
from apps.care.models import (
    REFERRAL_ACCESS_STATUSES,
    BreakGlassAccess,
    CareTeamMembership,
    Referral,
    ReferralStatus,
    ReferralUrgency,
)
from apps.clinics.models import Clinic, Membership, Role, Specialty
from apps.scheduling.models import Appointment, AppointmentStatus

# --- The care side of the access rules ------------------------------------------


def _active_doctor_at(*, doctor: User, clinic: str = "clinic") -> Exists:
    """The doctor is an active doctor of the (outer) row's clinic."""
    return Exists(
        Membership.objects.filter(
            user=doctor, clinic=OuterRef(clinic), role=Role.DOCTOR, is_active=True, clinic__is_active=True
        )
    )


def _care_team_rows(*, doctor: User) -> QuerySet[CareTeamMembership]:
    """The doctor's active care-team rows at clinics they still work at."""
    return CareTeamMembership.objects.filter(doctor=doctor, ended_at__isnull=True).filter(
        _active_doctor_at(doctor=doctor)
    )


def _referrals_giving_access(*, doctor: User) -> QuerySet[Referral]:
    return Referral.objects.filter(to_doctor=doctor, status__in=REFERRAL_ACCESS_STATUSES)


def _break_glass_active(*, doctor: User, now: datetime | None = None) -> QuerySet[BreakGlassAccess]:
    return BreakGlassAccess.objects.filter(doctor=doctor, ended_at__isnull=True, expires_at__gt=now or timezone.now())


def referral_gives_access(*, doctor: User, patient: User) -> bool:
    """An open or booked referral of the patient to this doctor (a specialty
    referral once this doctor has accepted it)."""
    return _referrals_giving_access(doctor=doctor).filter(patient=patient).exists()


def care_team_gives_access(*, doctor: User, patient: User) -> bool:
    """The doctor is on the patient's care team at a clinic where they are
    an active doctor."""
    return _care_team_rows(doctor=doctor).filter(patient=patient).exists()


def break_glass_gives_access(*, doctor: User, patient: User) -> bool:
    """An unexpired, unended break-glass access of this doctor to the patient."""
    return _break_glass_active(doctor=doctor).filter(patient=patient).exists()


def patients_of_doctor(*, doctor: User) -> QuerySet[User]:
    """The patients whose record the doctor sees through a relation: a
    shared (non-cancelled) appointment, an open or booked referral to them,
    or the care team. One query, whatever the numbers. Break-glass patients
    are not "my patients": they are reachable, not listed."""
    appointment = Appointment.objects.filter(doctor=doctor, patient=OuterRef("pk")).exclude(
        status=AppointmentStatus.CANCELLED
    )
    referral = _referrals_giving_access(doctor=doctor).filter(patient=OuterRef("pk"))
    care_team = _care_team_rows(doctor=doctor).filter(patient=OuterRef("pk"))
    return User.objects.filter(patient_profile__isnull=False).filter(
        Q(Exists(appointment)) | Q(Exists(referral)) | Q(Exists(care_team))
    )


def patient_ids_of_doctor(*, doctor: User) -> list[int]:
    """The ids of ``patients_of_doctor``, read in one query that PostgreSQL
    answers faster for a doctor with many patients: the union of the three
    relations' patient ids (an index scan each) rather than the three checks
    for every user."""
    appointments = Appointment.objects.filter(doctor=doctor).exclude(status=AppointmentStatus.CANCELLED).order_by()
    related = appointments.values("patient_id").union(
        _referrals_giving_access(doctor=doctor).order_by().values("patient_id"),
        _care_team_rows(doctor=doctor).order_by().values("patient_id"),
    )
    return list(PatientProfile.objects.filter(user_id__in=related).order_by().values_list("user_id", flat=True))


@dataclass(frozen=True)
class PatientAccess:
    """Why ``user`` sees ``patient``'s record: ``code`` is one of
    ``ACCESS_LABELS``; ``until`` when the access ends on its own (break-glass)."""

    code: str
    label: str
    until: datetime | None = None


ACCESS_LABELS = {
    "self": _("This is your own record."),
    "appointment": _("You have an appointment with this patient."),
    "referral": _("This patient was referred to you."),
    "care_team": _("You are on this patient's care team."),
    "break_glass": _("Break-glass access (emergency)."),
}


# The rules that make a doctor one of the patient's own doctors.
RELATION_CODES = frozenset({"appointment", "referral", "care_team"})


def _access(code: str, until: datetime | None = None) -> PatientAccess:
    return PatientAccess(code=code, label=str(ACCESS_LABELS[code]), until=until)


def patient_access_reason(*, user: User, patient: User) -> PatientAccess | None:
    """The first rule of ``patient_can_be_seen_by`` that lets ``user`` see
    ``patient``'s record, for display; None when none does."""
    from apps.accounts.selectors import _shares_an_appointment

    if not user.is_authenticated:
        return None
    if user.pk == patient.pk:
        return _access("self")
    if _shares_an_appointment(doctor=user, patient=patient):
        return _access("appointment")
    if referral_gives_access(doctor=user, patient=patient):
        return _access("referral")
    if care_team_gives_access(doctor=user, patient=patient):
        return _access("care_team")
    glass = _break_glass_active(doctor=user).filter(patient=patient).order_by("-expires_at").first()
    if glass is not None:
        return _access("break_glass", until=glass.expires_at)
    return None


# --- Care teams ----------------------------------------------------------------


def care_team_of_patient(*, patient: User) -> QuerySet[CareTeamMembership]:
    """The patient's active care team, with each doctor and clinic."""
    return (
        CareTeamMembership.objects.filter(patient=patient, ended_at__isnull=True)
        .select_related("doctor", "clinic", "added_by")
        .order_by("clinic__name", "doctor__full_name")
    )


def care_team_candidates(*, clinic: Clinic, patient: User) -> QuerySet[User]:
    """Active doctors of ``clinic`` who are not yet on the patient's care team."""
    on_team = CareTeamMembership.objects.filter(patient=patient, doctor=OuterRef("pk"), ended_at__isnull=True)
    return (
        User.objects.filter(
            memberships__clinic=clinic, memberships__role=Role.DOCTOR, memberships__is_active=True, is_active=True
        )
        .exclude(pk=patient.pk)
        .filter(~Exists(on_team))
        .distinct()
        .order_by("full_name")
    )


def care_team_clinics_for_user(*, user: User, patient: User) -> QuerySet[Clinic]:
    """The clinics at which ``user`` may change the patient's care team: a
    doctor related to the patient (appointment, referral, care team; not a
    break-glass, which is for reading in an emergency), at the clinics they
    work at; a clinic admin, at the clinics they run where the patient has
    an appointment or a care team."""
    access = patient_access_reason(user=user, patient=patient)
    as_doctor = Q(pk__in=[])
    if access is not None and access.code in RELATION_CODES:
        as_doctor = Q(memberships__user=user, memberships__role=Role.DOCTOR, memberships__is_active=True)
    patient_there = Q(
        Exists(Appointment.objects.filter(clinic=OuterRef("pk"), patient=patient)),
    ) | Q(Exists(CareTeamMembership.objects.filter(clinic=OuterRef("pk"), patient=patient, ended_at__isnull=True)))
    as_admin = Q(memberships__user=user, memberships__role=Role.ADMIN, memberships__is_active=True) & patient_there
    return Clinic.objects.filter(is_active=True).filter(as_doctor | as_admin).distinct().order_by("name")


# --- Break-glass -----------------------------------------------------------------


def break_glass_for_clinic(*, clinic: Clinic) -> QuerySet[BreakGlassAccess]:
    """Every break-glass access opened by the clinic's doctors, newest first."""
    return BreakGlassAccess.objects.filter(clinic=clinic).select_related("doctor", "patient").order_by("-created_at")


def break_glass_active_for(*, doctor: User, patient: User) -> BreakGlassAccess | None:
    return _break_glass_active(doctor=doctor).filter(patient=patient).order_by("-expires_at").first()


# --- Referrals -----------------------------------------------------------------


def _doctor_specialties(doctor: User) -> QuerySet[Specialty]:
    return Specialty.objects.filter(doctors__user=doctor)


def referrals_for_doctor(*, doctor: User, statuses: tuple[str, ...] = (ReferralStatus.OPEN,)) -> QuerySet[Referral]:
    """Referrals the doctor receives: those to them, and those to one of
    their specialties that no doctor has accepted yet; open ones by default,
    urgent first, then newest. One query (with its related rows)."""
    to_them = Q(to_doctor=doctor)
    to_their_specialty = Q(to_doctor__isnull=True, to_specialty__in=_doctor_specialties(doctor))
    return (
        Referral.objects.filter(to_them | to_their_specialty, status__in=statuses)
        .exclude(patient=doctor)
        .select_related("patient", "from_doctor", "from_clinic", "to_doctor", "to_specialty", "to_clinic")
        .order_by(_urgency_rank(), "-created_at", "-id")
    )


def _urgency_rank() -> Case:
    return Case(
        When(urgency=ReferralUrgency.URGENT, then=Value(0)),
        When(urgency=ReferralUrgency.SOON, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )


def referrals_made_by(*, doctor: User) -> QuerySet[Referral]:
    return (
        Referral.objects.filter(from_doctor=doctor)
        .select_related("patient", "to_doctor", "to_specialty", "to_clinic")
        .order_by("-created_at", "-id")
    )


def referrals_of_patient(*, patient: User) -> QuerySet[Referral]:
    """All of a patient's referrals, newest first (their own list, the chart)."""
    return (
        Referral.objects.filter(patient=patient)
        .select_related("from_doctor", "from_clinic", "to_doctor", "to_specialty", "to_clinic", "appointment")
        .order_by("-created_at", "-id")
    )


def referral_can_be_seen_by(*, user: User, referral: Referral) -> bool:
    """The patient, the referring doctor, the receiving doctor, and, while
    nobody has accepted it, the doctors of the specialty it is for."""
    if not user.is_authenticated:
        return False
    if referral.patient_id == user.pk:
        return True
    if referral.from_doctor_id == user.pk:
        return True
    if referral.to_doctor_id == user.pk:
        return True
    return referral_can_be_accepted_by(user=user, referral=referral)


def referral_can_be_accepted_by(*, user: User, referral: Referral) -> bool:
    """An open specialty referral nobody has taken, and a doctor of that
    specialty (not the patient, not the referrer)."""
    if referral.status != ReferralStatus.OPEN:
        return False
    if referral.to_doctor_id is not None or referral.to_specialty_id is None:
        return False
    if user.pk in (referral.patient_id, referral.from_doctor_id):
        return False
    if not Membership.objects.filter(user=user, role=Role.DOCTOR, is_active=True, clinic__is_active=True).exists():
        return False
    return _doctor_specialties(user).filter(pk=referral.to_specialty_id).exists()


def referral_get_for_user(*, user: User, referral_id: int) -> Referral:
    """One referral, for those who may see it (audited); else "not found"."""
    referral = (
        Referral.objects.select_related(
            "patient", "from_doctor", "from_clinic", "to_doctor", "to_specialty", "to_clinic", "appointment"
        )
        .filter(pk=referral_id)
        .first()
    )
    if referral is None or not referral_can_be_seen_by(user=user, referral=referral):
        audit_access_denied(actor=user, object_type="referral", object_id=referral_id)
        raise Http404
    audit_record(
        action=AuditAction.VIEW, actor=user, object_type="referral", object_id=referral.pk, patient=referral.patient
    )
    return referral


def patient_find_for_break_glass(*, patient_id: int | None = None, phone: str | None = None) -> User | None:
    """The patient with exactly this id or this (E.164) phone number; no
    partial matches, no lists: break-glass opens one known record."""
    patients = User.objects.filter(patient_profile__isnull=False, is_active=True)
    if patient_id is not None:
        return patients.filter(pk=patient_id).first()
    if phone:
        return patients.filter(phone=phone).first()
    return None


def break_glass_get_for_doctor(*, doctor: User, access_id: int) -> BreakGlassAccess:
    access = BreakGlassAccess.objects.select_related("patient").filter(pk=access_id, doctor=doctor).first()
    if access is None:
        raise Http404
    return access


def care_team_membership_get_for_user(*, user: User, membership_id: int) -> CareTeamMembership:
    """An active care-team row, for its doctor or whoever may change the
    patient's team at its clinic; else "not found"."""
    membership = (
        CareTeamMembership.objects.select_related("patient", "doctor", "clinic")
        .filter(pk=membership_id, ended_at__isnull=True)
        .first()
    )
    allowed = membership is not None and (
        membership.doctor_id == user.pk
        or care_team_clinics_for_user(user=user, patient=membership.patient).filter(pk=membership.clinic_id).exists()
    )
    if membership is None or not allowed:
        raise Http404
    return membership
