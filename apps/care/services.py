"""Writes of care teams, break-glass accesses and referrals: each checks who
may do it, writes and audits in one transaction, and leaves its messages
to the notifications outbox (delivered once the transaction commits).

A refusal raises ``CareRefused`` with a translated message and nothing
written. Consult notes are written by services_notes.py.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import User
from apps.accounts.selectors import patient_can_be_seen_by_doctor
from apps.audit.models import AuditAction
from apps.audit.services import audit_record
from apps.care.models import (
    BREAK_GLASS_REASON_MIN_LENGTH,
    REFERRAL_ACCESS_STATUSES,
    BreakGlassAccess,
    CareTeamMembership,
    Referral,
    ReferralStatus,
    ReferralUrgency,
)
from apps.care.selectors import (
    care_team_clinics_for_user,
    referral_can_be_accepted_by,
)
from apps.clinics.models import Clinic, Membership, Role, Specialty
from apps.clinics.selectors import UserRole, clinics_of_doctor, user_roles
from apps.notifications.models import Category, Channel
from apps.notifications.services import OutgoingMessage, notifications_send_many
from apps.scheduling.models import Appointment, AppointmentStatus

BREAK_GLASS_HOURS = 12
REFERRAL_REASON_MAX_LENGTH = 2000
DECLINE_REASON_MAX_LENGTH = 500


class CareRefused(Exception):
    """The change is not allowed or not valid; ``message`` says why (translated)."""

    def __init__(self, message: str, code: str = "invalid") -> None:
        self.message = message
        self.code = code
        super().__init__(code)


def _is_active_doctor(user: User, clinic: Clinic | None = None) -> bool:
    memberships = Membership.objects.filter(user=user, role=Role.DOCTOR, is_active=True, clinic__is_active=True)
    if clinic is not None:
        memberships = memberships.filter(clinic=clinic)
    return memberships.exists()


# --- Care teams ----------------------------------------------------------------


def care_team_add(*, patient: User, doctor: User, clinic: Clinic, by: User) -> CareTeamMembership:
    """Put ``doctor`` (an active doctor of ``clinic``) on the patient's care
    team, by a doctor of that clinic who sees the patient's record or by an
    admin of the clinic where the patient is cared for."""
    if not care_team_clinics_for_user(user=by, patient=patient).filter(pk=clinic.pk).exists():
        raise CareRefused(str(_("You cannot change this patient's care team at this clinic.")), "forbidden")
    if doctor.pk == patient.pk or not _is_active_doctor(doctor, clinic):
        raise CareRefused(str(_("Choose a doctor of this clinic.")), "not_a_doctor")
    try:
        with transaction.atomic():
            membership = CareTeamMembership.objects.create(patient=patient, doctor=doctor, clinic=clinic, added_by=by)
            audit_record(
                action=AuditAction.CREATE,
                actor=by,
                object_type="care_team_membership",
                object_id=membership.pk,
                patient=patient,
                clinic_id=clinic.pk,
            )
    except IntegrityError:
        raise CareRefused(str(_("This doctor is already on the care team.")), "duplicate") from None
    return membership


def care_team_remove(*, membership: CareTeamMembership, by: User) -> CareTeamMembership:
    """End a care-team membership: the doctor themself, or whoever may add
    doctors to the team at that clinic."""
    if membership.ended_at is not None:
        raise CareRefused(str(_("This doctor is no longer on the care team.")), "ended")
    allowed = (
        membership.doctor_id == by.pk
        or care_team_clinics_for_user(user=by, patient=membership.patient).filter(pk=membership.clinic_id).exists()
    )
    if not allowed:
        raise CareRefused(str(_("You cannot change this patient's care team at this clinic.")), "forbidden")
    with transaction.atomic():
        membership.ended_at = timezone.now()
        membership.ended_by = by
        membership.save(update_fields=["ended_at", "ended_by"])
        audit_record(
            action=AuditAction.UPDATE,
            actor=by,
            object_type="care_team_membership",
            object_id=membership.pk,
            patient=membership.patient,
            clinic_id=membership.clinic_id,
            reason="ended",
        )
    return membership


# --- Break-glass -----------------------------------------------------------------


def break_glass_open(*, doctor: User, patient: User, reason: str) -> BreakGlassAccess:
    """Open emergency access to ``patient``'s record for 12 hours: a doctor
    only, with a reason; audited with the reason, and the clinic admins of
    the doctor's clinics are told in the app."""
    reason = " ".join((reason or "").split())
    if UserRole.DOCTOR not in user_roles(user=doctor):
        raise CareRefused(str(_("Only doctors can open a patient's record in an emergency.")), "forbidden")
    if doctor.pk == patient.pk:
        raise CareRefused(str(_("This is your own record.")), "self")
    if len(reason) < BREAK_GLASS_REASON_MIN_LENGTH:
        raise CareRefused(
            str(_("Say why you need this record now (at least %(count)d characters)."))
            % {"count": BREAK_GLASS_REASON_MIN_LENGTH},
            "reason",
        )
    if len(reason) > 1000:
        raise CareRefused(str(_("Keep the reason under 1000 characters.")), "reason")
    now = timezone.now()
    clinics = list(clinics_of_doctor(user=doctor).order_by("name"))
    with transaction.atomic():
        access = BreakGlassAccess.objects.create(
            doctor=doctor,
            patient=patient,
            clinic=clinics[0] if clinics else None,
            reason=reason,
            expires_at=now + timedelta(hours=BREAK_GLASS_HOURS),
        )
        audit_record(
            action=AuditAction.CREATE,
            actor=doctor,
            object_type="break_glass",
            object_id=access.pk,
            patient=patient,
            clinic_id=access.clinic_id,
            reason=reason,
        )
        _break_glass_notify(access=access, clinics=clinics)
    return access


def _break_glass_notify(*, access: BreakGlassAccess, clinics: list[Clinic]) -> None:
    admins = (
        Membership.objects.filter(clinic__in=clinics, role=Role.ADMIN, is_active=True)
        .select_related("user")
        .order_by("clinic_id", "user_id")
    )
    messages = [
        OutgoingMessage(
            recipient=membership.user,
            category=Category.ACCOUNT,
            template="care/break_glass",
            context={
                "doctor": access.doctor.full_name,
                "patient": access.patient.full_name,
                "opened_at": access.created_at.isoformat(),
                "link": reverse("care:break_glass_clinic", kwargs={"clinic_id": membership.clinic_id}),
            },
            idempotency_key=f"care:break_glass:{access.pk}:{membership.user_id}",
            clinic_id=membership.clinic_id,
            channels=[Channel.IN_APP],
            sensitive=True,
        )
        for membership in admins
    ]
    notifications_send_many(messages=messages)


def break_glass_end(*, access: BreakGlassAccess, by: User) -> BreakGlassAccess:
    """The doctor closes their emergency access before it expires."""
    if access.doctor_id != by.pk:
        raise CareRefused(str(_("This is not your access.")), "forbidden")
    if access.ended_at is not None or access.expires_at <= timezone.now():
        return access
    with transaction.atomic():
        access.ended_at = timezone.now()
        access.save(update_fields=["ended_at"])
        audit_record(
            action=AuditAction.UPDATE,
            actor=by,
            object_type="break_glass",
            object_id=access.pk,
            patient=access.patient,
            clinic_id=access.clinic_id,
            reason="ended",
        )
    return access


# --- Referrals -------------------------------------------------------------------


def _referral_audit(*, referral: Referral, by: User | None, action: str, reason: str = "") -> None:
    audit_record(
        action=action,
        actor=by,
        object_type="referral",
        object_id=referral.pk,
        patient=referral.patient,
        clinic_id=referral.from_clinic_id,
        reason=reason,
    )


def _booking_link(referral: Referral) -> str:
    """Where the patient books: the receiving doctor's week, or the doctors
    of the specialty."""
    if referral.to_doctor_id is not None and referral.to_clinic_id is not None:
        return reverse(
            "scheduling:doctor_week", kwargs={"doctor_id": referral.to_doctor_id, "clinic_id": referral.to_clinic_id}
        )
    if referral.to_specialty_id is not None:
        return f"{reverse('scheduling:find')}?specialty={referral.to_specialty_id}"
    return reverse("scheduling:find")


def referral_booking_link(*, referral: Referral) -> str:
    return _booking_link(referral)


def _target_context(referral: Referral) -> dict[str, str]:
    specialty = referral.to_specialty
    return {
        "to_doctor": referral.to_doctor.full_name if referral.to_doctor else "",
        "specialty_en": specialty.name_en if specialty else "",
        "specialty_zh_hans": specialty.name_zh_hans if specialty else "",
    }


def _referral_invite(referral: Referral, *, key: str) -> OutgoingMessage:
    """The patient's invitation to book: in the app and by SMS, in their
    language (the outbox renders it so), linking to their referral page."""
    return OutgoingMessage(
        recipient=referral.patient,
        category=Category.APPOINTMENT,
        template="care/referral_invite",
        context={
            "from_doctor": referral.from_doctor.full_name,
            **_target_context(referral),
            "link": reverse("care:referral_detail", kwargs={"referral_id": referral.pk}),
        },
        idempotency_key=f"care:referral_invite:{referral.pk}:{key}",
        clinic_id=referral.from_clinic_id,
        channels=[Channel.IN_APP, Channel.SMS],
        sensitive=True,
    )


def _referral_notice(referral: Referral, *, recipient: User, event: str) -> OutgoingMessage:
    """An in-app notice about a referral to a doctor (a new one; a decline)."""
    return OutgoingMessage(
        recipient=recipient,
        category=Category.CONSULT,
        template="care/referral_notice",
        context={
            "event": event,
            "patient": referral.patient.full_name,
            "from_doctor": referral.from_doctor.full_name,
            **_target_context(referral),
            "urgency": referral.urgency,
            "link": reverse("care:referral_detail", kwargs={"referral_id": referral.pk}),
        },
        idempotency_key=f"care:referral_{event}:{referral.pk}:{recipient.pk}",
        urgent=referral.urgency == ReferralUrgency.URGENT,
        channels=[Channel.IN_APP],
        sensitive=True,
    )


def _doctors_of_specialty(specialty: Specialty, *, exclude: list[int]) -> list[User]:
    return list(
        User.objects.filter(
            doctor_profile__specialties=specialty,
            memberships__role=Role.DOCTOR,
            memberships__is_active=True,
            memberships__clinic__is_active=True,
            is_active=True,
        )
        .exclude(pk__in=exclude)
        .distinct()
    )


def _first_clinic(doctor: User) -> Clinic | None:
    return clinics_of_doctor(user=doctor).order_by("name").first()


def referral_create(
    *,
    patient: User,
    from_doctor: User,
    reason: str,
    urgency: str = ReferralUrgency.ROUTINE,
    to_doctor: User | None = None,
    to_specialty: Specialty | None = None,
) -> Referral:
    """A doctor who sees the patient's record refers them to another doctor,
    or to any doctor of a specialty, anywhere in the network. The receiving
    doctor (or the specialty's doctors) is told in the app; the patient is
    invited to book."""
    reason = (reason or "").strip()
    if not patient_can_be_seen_by_doctor(user=from_doctor, patient=patient):
        raise CareRefused(str(_("You cannot refer this patient.")), "forbidden")
    if from_doctor.pk == patient.pk:
        raise CareRefused(str(_("You cannot refer yourself.")), "forbidden")
    if to_doctor is None and to_specialty is None:
        raise CareRefused(str(_("Choose a doctor or a specialty.")), "no_receiver")
    if to_doctor is not None and (to_doctor.pk in (from_doctor.pk, patient.pk) or not _is_active_doctor(to_doctor)):
        raise CareRefused(str(_("Choose another doctor of the network.")), "bad_receiver")
    if not reason:
        raise CareRefused(str(_("Say why you refer the patient.")), "reason")
    if len(reason) > REFERRAL_REASON_MAX_LENGTH:
        raise CareRefused(str(_("Keep the reason under 2000 characters.")), "reason")
    if urgency not in ReferralUrgency.values:
        raise CareRefused(str(_("Choose how urgent it is.")), "urgency")
    with transaction.atomic():
        referral = Referral.objects.create(
            patient=patient,
            from_doctor=from_doctor,
            from_clinic=_first_clinic(from_doctor),
            to_doctor=to_doctor,
            to_specialty=to_specialty,
            to_clinic=_first_clinic(to_doctor) if to_doctor is not None else None,
            reason=reason,
            urgency=urgency,
        )
        _referral_audit(referral=referral, by=from_doctor, action=AuditAction.CREATE)
        receivers = (
            [to_doctor]
            if to_doctor is not None
            else _doctors_of_specialty(to_specialty, exclude=[from_doctor.pk, patient.pk])  # type: ignore[arg-type]  # one of the two is set
        )
        notifications_send_many(
            messages=[
                _referral_invite(referral, key="new"),
                *(_referral_notice(referral, recipient=doctor, event="new") for doctor in receivers),
            ]
        )
    return referral


def _locked(referral: Referral) -> Referral:
    """The referral re-read under a row lock, so that two doctors acting at
    once see each other's change."""
    return (
        Referral.objects.select_for_update(of=("self",))
        .select_related("patient", "from_doctor", "to_doctor", "to_specialty")
        .get(pk=referral.pk)
    )


def referral_accept(*, referral: Referral, by: User) -> Referral:
    """A doctor of the specialty takes an open specialty referral: it is
    theirs from now on (chart access), and the patient is invited to book
    with them."""
    with transaction.atomic():
        referral = _locked(referral)
        if not referral_can_be_accepted_by(user=by, referral=referral):
            raise CareRefused(str(_("This referral can no longer be accepted.")), "state")
        referral.to_doctor = by
        referral.to_clinic = _first_clinic(by)
        referral.accepted_at = timezone.now()
        referral.save(update_fields=["to_doctor", "to_clinic", "accepted_at", "updated_at"])
        _referral_audit(referral=referral, by=by, action=AuditAction.UPDATE, reason="accepted")
        notifications_send_many(messages=[_referral_invite(referral, key=f"accepted:{by.pk}")])
    return referral


def referral_decline(*, referral: Referral, by: User, reason: str) -> Referral:
    """The receiving doctor declines an open or booked referral, saying why;
    the referring doctor is told."""
    reason = (reason or "").strip()
    if not reason:
        raise CareRefused(str(_("Say why you decline the referral.")), "reason")
    if len(reason) > DECLINE_REASON_MAX_LENGTH:
        raise CareRefused(str(_("Keep the reason under 500 characters.")), "reason")
    with transaction.atomic():
        referral = _locked(referral)
        if referral.to_doctor_id != by.pk or referral.status not in REFERRAL_ACCESS_STATUSES:
            raise CareRefused(str(_("This referral can no longer be declined.")), "state")
        _close(referral, status=ReferralStatus.DECLINED, by=by, decline_reason=reason)
        _referral_audit(referral=referral, by=by, action=AuditAction.UPDATE, reason="declined")
        notifications_send_many(messages=[_referral_notice(referral, recipient=referral.from_doctor, event="declined")])
    return referral


def referral_complete(*, referral: Referral, by: User) -> Referral:
    """The receiving doctor closes the referral as done."""
    with transaction.atomic():
        referral = _locked(referral)
        if referral.to_doctor_id != by.pk or referral.status not in REFERRAL_ACCESS_STATUSES:
            raise CareRefused(str(_("This referral can no longer be completed.")), "state")
        _close(referral, status=ReferralStatus.COMPLETED, by=by)
        _referral_audit(referral=referral, by=by, action=AuditAction.UPDATE, reason="completed")
    return referral


def referral_cancel(*, referral: Referral, by: User) -> Referral:
    """The referring doctor withdraws an open or booked referral."""
    with transaction.atomic():
        referral = _locked(referral)
        if referral.from_doctor_id != by.pk or referral.status not in REFERRAL_ACCESS_STATUSES:
            raise CareRefused(str(_("This referral can no longer be withdrawn.")), "state")
        _close(referral, status=ReferralStatus.CANCELLED, by=by)
        _referral_audit(referral=referral, by=by, action=AuditAction.UPDATE, reason="withdrawn")
    return referral


def _close(referral: Referral, *, status: str, by: User, decline_reason: str = "") -> None:
    referral.status = status
    referral.decline_reason = decline_reason
    referral.closed_at = timezone.now()
    referral.closed_by = by
    referral.save(update_fields=["status", "decline_reason", "closed_at", "closed_by", "updated_at"])


def referral_booked(*, referral: Referral, appointment: Appointment) -> Referral:
    """The patient booked ``appointment`` with the receiving doctor (with a
    doctor of the specialty, who then receives the referral): open → booked.
    Audited without an actor's action of their own: it follows the booking."""
    if appointment.patient_id != referral.patient_id:
        raise CareRefused(str(_("This appointment is not the referred patient's.")), "mismatch")
    with transaction.atomic():
        referral = _locked(referral)
        if referral.status not in REFERRAL_ACCESS_STATUSES:
            raise CareRefused(str(_("This referral is closed.")), "state")
        if referral.to_doctor_id is None:
            if not referral_can_be_accepted_by(user=appointment.doctor, referral=referral):
                raise CareRefused(str(_("This doctor does not receive the referral.")), "mismatch")
            referral.to_doctor = appointment.doctor
            referral.to_clinic_id = appointment.clinic_id
            referral.accepted_at = timezone.now()
        elif referral.to_doctor_id != appointment.doctor_id:
            raise CareRefused(str(_("This doctor does not receive the referral.")), "mismatch")
        referral.status = ReferralStatus.BOOKED
        referral.appointment = appointment
        referral.save(update_fields=["status", "appointment", "to_doctor", "to_clinic", "accepted_at", "updated_at"])
        _referral_audit(referral=referral, by=appointment.booked_by, action=AuditAction.UPDATE, reason="booked")
    return referral


def referrals_follow_booking(*, appointment: Appointment, created: bool) -> None:
    """Keep referrals in step with the appointments booked for them, whatever
    booked it (the patient's page, the API, the clinic's staff): a new
    appointment of the patient with the receiving doctor (or a doctor of the
    specialty of an unaccepted referral) books the oldest open referral; a
    rescheduled one takes over its predecessor's referral; cancelling it
    opens the referral again."""
    if created and appointment.status != AppointmentStatus.CANCELLED:
        if appointment.rescheduled_from_id is not None:
            moved = Referral.objects.filter(
                appointment_id=appointment.rescheduled_from_id, status=ReferralStatus.BOOKED
            ).update(appointment=appointment)
            if moved:
                return
        for referral in Referral.objects.filter(patient_id=appointment.patient_id, status=ReferralStatus.OPEN).order_by(
            "created_at", "id"
        ):
            if referral.to_doctor_id == appointment.doctor_id or (
                referral.to_doctor_id is None
                and referral_can_be_accepted_by(user=appointment.doctor, referral=referral)
            ):
                referral_booked(referral=referral, appointment=appointment)
                return
        return
    if not created and appointment.status == AppointmentStatus.CANCELLED:
        for referral in Referral.objects.filter(appointment=appointment, status=ReferralStatus.BOOKED):
            referral.status = ReferralStatus.OPEN
            referral.appointment = None
            referral.save(update_fields=["status", "appointment", "updated_at"])
            _referral_audit(
                referral=referral, by=appointment.cancelled_by, action=AuditAction.UPDATE, reason="reopened"
            )
