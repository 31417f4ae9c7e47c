"""The doctor's workspace: who may see a patient's chart besides the doctors
they have appointments with (care teams, referrals, break-glass), and what
doctors write in it (consult notes, diagnoses, addenda).

Signed notes and signed addenda are immutable: the model refuses to save
or delete them (``SignedRecordError``), and on PostgreSQL a trigger refuses
it in the database itself (migration 0002). A signed note can still get its
follow-up appointment linked; diagnoses of a signed note can still be marked
resolved (the problem list), nothing else. See docs/care-access.md.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Length
from django.db.models.lookups import GreaterThanOrEqual
from django.utils.translation import gettext_lazy as _

from apps.clinics.models import Clinic, Specialty
from apps.scheduling.models import Appointment

BREAK_GLASS_REASON_MIN_LENGTH = 10


class SignedRecordError(Exception):
    """A signed note or addendum was about to change."""


# --- Care teams and break-glass ----------------------------------------------------


class CareTeamMembership(models.Model):
    """A doctor of a clinic who follows a patient without having an
    appointment with them. Ending it keeps the row (``ended_at``)."""

    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="care_teams")
    doctor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="care_team_patients")
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="care_team_memberships")
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    added_at = models.DateTimeField(_("added"), auto_now_add=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-added_at", "-id"]
        verbose_name = _("care team membership")
        verbose_name_plural = _("care team memberships")
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "doctor"], condition=Q(ended_at__isnull=True), name="one_active_care_team_row"
            ),
        ]
        indexes = [
            models.Index(fields=["doctor", "patient"], condition=Q(ended_at__isnull=True), name="care_team_active"),
            models.Index(fields=["patient", "ended_at"], name="care_team_patient"),
        ]

    def __str__(self) -> str:
        return f"{self.doctor} → {self.patient} ({self.clinic})"

    @property
    def is_active(self) -> bool:
        return self.ended_at is None


class BreakGlassAccess(models.Model):
    """Emergency access to a patient's chart by a doctor with no relation to
    them: a mandatory reason, a time limit, and the clinic admins of the
    doctor's clinic see it."""

    doctor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="break_glass_accesses")
    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    clinic = models.ForeignKey(
        Clinic,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="break_glass_accesses",
        help_text=_("The doctor's clinic, whose admins review the access."),
    )
    reason = models.TextField(_("reason"), max_length=1000)
    created_at = models.DateTimeField(_("opened"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"))
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("break-glass access")
        verbose_name_plural = _("break-glass accesses")
        constraints = [
            models.CheckConstraint(
                condition=GreaterThanOrEqual(Length("reason"), BREAK_GLASS_REASON_MIN_LENGTH),
                name="break_glass_has_a_reason",
            ),
            models.CheckConstraint(condition=Q(expires_at__gt=F("created_at")), name="break_glass_expires_later"),
        ]
        indexes = [
            models.Index(fields=["doctor", "patient", "expires_at"], name="break_glass_doctor_patient"),
            models.Index(fields=["clinic", "created_at"], name="break_glass_clinic_time"),
        ]

    def __str__(self) -> str:
        return f"{self.doctor} → {self.patient} ({self.created_at:%Y-%m-%d %H:%M})"


# --- Referrals ---------------------------------------------------------------------


class ReferralUrgency(models.TextChoices):
    ROUTINE = "routine", _("Routine")
    SOON = "soon", _("Soon")
    URGENT = "urgent", _("Urgent")


class ReferralStatus(models.TextChoices):
    OPEN = "open", _("Open")
    BOOKED = "booked", _("Booked")
    COMPLETED = "completed", _("Completed")
    DECLINED = "declined", _("Declined")
    CANCELLED = "cancelled", _("Withdrawn")


# Referrals that give the receiving doctor access to the patient's chart.
REFERRAL_ACCESS_STATUSES = (ReferralStatus.OPEN, ReferralStatus.BOOKED)


class Referral(models.Model):
    """A doctor sends a patient to another doctor, or to any doctor of a
    specialty (one of them accepts it and becomes ``to_doctor``)."""

    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="referrals")
    from_doctor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="referrals_made")
    from_clinic = models.ForeignKey(Clinic, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    to_doctor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="referrals_received",
        verbose_name=_("to doctor"),
    )
    to_specialty = models.ForeignKey(
        Specialty,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="referrals",
        verbose_name=_("to specialty"),
    )
    to_clinic = models.ForeignKey(
        Clinic, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("at clinic")
    )
    reason = models.TextField(_("reason for the referral"), max_length=2000)
    urgency = models.CharField(
        _("urgency"), max_length=10, choices=ReferralUrgency.choices, default=ReferralUrgency.ROUTINE
    )
    status = models.CharField(_("status"), max_length=10, choices=ReferralStatus.choices, default=ReferralStatus.OPEN)
    decline_reason = models.CharField(_("why it was declined"), max_length=500, blank=True)
    accepted_at = models.DateTimeField(_("accepted"), null=True, blank=True)
    appointment = models.ForeignKey(
        Appointment,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="referrals",
        help_text=_("The appointment booked for this referral."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("referral")
        verbose_name_plural = _("referrals")
        constraints = [
            models.CheckConstraint(
                condition=Q(to_doctor__isnull=False) | Q(to_specialty__isnull=False),
                name="referral_to_a_doctor_or_specialty",
            ),
            models.CheckConstraint(
                condition=~Q(status=ReferralStatus.DECLINED) | ~Q(decline_reason=""),
                name="referral_decline_has_a_reason",
            ),
        ]
        indexes = [
            models.Index(fields=["to_doctor", "status"], name="referral_to_doctor_status"),
            models.Index(fields=["to_specialty", "status"], name="referral_to_specialty_status"),
            models.Index(fields=["patient", "status"], name="referral_patient_status"),
            models.Index(fields=["from_doctor", "created_at"], name="referral_from_doctor_time"),
        ]

    def __str__(self) -> str:
        target = self.to_doctor or self.to_specialty
        return f"{self.patient} → {target} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in REFERRAL_ACCESS_STATUSES


# --- Consult notes, diagnoses, addenda ----------------------------------------------


class NoteStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SIGNED = "signed", _("Signed")


def content_hash_of(fields: dict[str, Any]) -> str:
    """SHA-256 of a canonical JSON of the signed content."""
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class SignedGuardMixin(models.Model):
    """Refuses to save or delete a row that was signed when it was loaded,
    except for the fields in ``MUTABLE_WHEN_SIGNED`` (passed as
    ``update_fields``)."""

    MUTABLE_WHEN_SIGNED: frozenset[str] = frozenset()
    SIGNED_MARKER = ""  # the column that says whether the row is signed
    _signed_in_db: bool | None = False  # as loaded; None when the marker was deferred

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        update_fields = kwargs.get("update_fields")
        if self._was_signed() and (update_fields is None or set(update_fields) - self.MUTABLE_WHEN_SIGNED):
            raise SignedRecordError(f"{self._meta.label} {self.pk} is signed")
        super().save(*args, **kwargs)
        self._signed_in_db = self._is_signed()

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        if self._was_signed():
            raise SignedRecordError(f"{self._meta.label} {self.pk} is signed")
        return super().delete(*args, **kwargs)

    @classmethod
    def from_db(cls, db: Any, field_names: Any, values: Any, **kwargs: Any) -> Any:
        instance = super().from_db(db, field_names, values, **kwargs)
        # Unknown (None) when the field was deferred: asked at save time.
        instance._signed_in_db = instance._is_signed() if cls.SIGNED_MARKER in field_names else None
        return instance

    def _was_signed(self) -> bool:
        known = self._signed_in_db
        if known is None and self.pk is not None:
            return type(self)._default_manager.filter(pk=self.pk).first()._is_signed()  # type: ignore[union-attr]  # row exists: it was loaded
        return bool(known)

    def _is_signed(self) -> bool:
        raise NotImplementedError


class ConsultNote(SignedGuardMixin):
    """The doctor's SOAP note of one appointment. ``version`` goes up with
    every save of the draft, so that an autosave from a stale page is
    refused rather than overwriting newer text."""

    MUTABLE_WHEN_SIGNED = frozenset({"follow_up_appointment", "updated_at"})
    SIGNED_MARKER = "status"
    SIGNED_FIELDS = (
        "subjective",
        "objective",
        "assessment",
        "plan",
        "medications",
        "advice",
        "patient_summary",
        "follow_up_after_days",
    )

    appointment = models.OneToOneField(Appointment, on_delete=models.PROTECT, related_name="consult_note")
    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="consult_notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="authored_notes")
    subjective = models.TextField(_("subjective"), blank=True, help_text=_("What the patient reports."))
    objective = models.TextField(_("objective"), blank=True, help_text=_("Readings, examination, results."))
    assessment = models.TextField(_("assessment"), blank=True)
    plan = models.TextField(_("plan"), blank=True)
    medications = models.TextField(_("medications"), blank=True)
    advice = models.TextField(_("advice"), blank=True)
    patient_summary = models.TextField(
        _("summary for the patient"), blank=True, help_text=_("The plan and instructions in plain language.")
    )
    follow_up_after_days = models.PositiveSmallIntegerField(_("follow up after (days)"), null=True, blank=True)
    follow_up_appointment = models.ForeignKey(
        Appointment, null=True, blank=True, on_delete=models.SET_NULL, related_name="follow_up_of"
    )
    status = models.CharField(_("status"), max_length=10, choices=NoteStatus.choices, default=NoteStatus.DRAFT)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    signed_at = models.DateTimeField(_("signed"), null=True, blank=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    content_hash = models.CharField(_("SHA-256 of the signed content"), max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("consult note")
        verbose_name_plural = _("consult notes")
        constraints = [
            models.CheckConstraint(
                condition=Q(status=NoteStatus.DRAFT) | Q(signed_at__isnull=False, signed_by__isnull=False),
                name="signed_note_has_signer",
            ),
        ]
        indexes = [
            models.Index(fields=["patient", "status", "created_at"], name="note_patient_status_time"),
            models.Index(fields=["author", "status"], name="note_author_status"),
        ]

    def __str__(self) -> str:
        return f"note {self.pk} ({self.status})"

    def _is_signed(self) -> bool:
        return self.status == NoteStatus.SIGNED

    @property
    def is_signed(self) -> bool:
        return self._is_signed()

    def signed_content(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.SIGNED_FIELDS}


class DiagnosisStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    RESOLVED = "resolved", _("Resolved")


class Diagnosis(models.Model):
    """An ICD-10 diagnosis recorded in a note. The patient's problem list is
    the diagnoses of their signed notes; only ``status`` (and when/who
    resolved it) changes after signing."""

    MUTABLE_WHEN_SIGNED = frozenset({"status", "resolved_at", "resolved_by"})

    note = models.ForeignKey(ConsultNote, on_delete=models.PROTECT, related_name="diagnoses")
    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="diagnoses")
    code = models.CharField(_("ICD-10 code"), max_length=10)
    description = models.CharField(_("description"), max_length=255)
    is_primary = models.BooleanField(_("primary"), default=False)
    status = models.CharField(
        _("status"), max_length=10, choices=DiagnosisStatus.choices, default=DiagnosisStatus.ACTIVE
    )
    onset_date = models.DateField(_("onset"), null=True, blank=True)
    recorded_at = models.DateTimeField(_("recorded"), auto_now_add=True)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-is_primary", "recorded_at", "id"]
        verbose_name = _("diagnosis")
        verbose_name_plural = _("diagnoses")
        constraints = [
            models.UniqueConstraint(fields=["note", "code"], name="one_diagnosis_per_code_per_note"),
            models.UniqueConstraint(fields=["note"], condition=Q(is_primary=True), name="one_primary_diagnosis"),
        ]
        indexes = [models.Index(fields=["patient", "status"], name="diagnosis_patient_status")]

    def __str__(self) -> str:
        return f"{self.code} {self.description}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        update_fields = kwargs.get("update_fields")
        if (update_fields is None or set(update_fields) - self.MUTABLE_WHEN_SIGNED) and self._note_is_signed():
            raise SignedRecordError(f"diagnosis {self.pk} belongs to a signed note")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        if self._note_is_signed():
            raise SignedRecordError(f"diagnosis {self.pk} belongs to a signed note")
        return super().delete(*args, **kwargs)

    def _note_is_signed(self) -> bool:
        # The database's word, not a possibly stale cached note.
        return ConsultNote.objects.filter(pk=self.note_id, status=NoteStatus.SIGNED).exists()


class NoteAddendum(SignedGuardMixin):
    """A later correction or addition to a signed note; signed when written."""

    SIGNED_MARKER = "signed_at"

    note = models.ForeignKey(ConsultNote, on_delete=models.PROTECT, related_name="addenda")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField(_("text"), max_length=5000)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    signed_at = models.DateTimeField(_("signed"), null=True, blank=True)
    content_hash = models.CharField(_("SHA-256 of the signed content"), max_length=64, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("addendum")
        verbose_name_plural = _("addenda")

    def __str__(self) -> str:
        return f"addendum {self.pk} to note {self.note_id}"

    def _is_signed(self) -> bool:
        return self.signed_at is not None
