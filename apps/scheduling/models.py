"""Doctors' availability, time off, each clinic's booking policy, and
appointments.

No two active appointments of one doctor, or of one patient, overlap: on
PostgreSQL exclusion constraints say so in the database itself (see
migrations/0002), on SQLite the booking services check inside an immediate
(write-locked) transaction.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from apps.clinics.models import Clinic


class ConsultMode(models.TextChoices):
    VIDEO = "video", _("Video")
    PHONE = "phone", pgettext_lazy("way to consult", "Phone")
    IN_PERSON = "in_person", _("In person")


def validate_weekdays(value: object) -> None:
    if not isinstance(value, list) or not value or not all(isinstance(d, int) and 0 <= d <= 6 for d in value):
        raise ValidationError(_("Choose at least one day of the week."), code="invalid")


def validate_modes(value: object) -> None:
    if not isinstance(value, list) or not value or not set(value) <= set(ConsultMode.values):
        raise ValidationError(_("Choose at least one way to consult."), code="invalid")


class BookingPolicy(models.Model):
    clinic = models.OneToOneField(Clinic, on_delete=models.CASCADE, related_name="booking_policy")
    min_notice_minutes = models.PositiveIntegerField(
        _("minimum notice (minutes)"), default=60, validators=[MaxValueValidator(14 * 24 * 60)]
    )
    max_ahead_days = models.PositiveIntegerField(
        _("book up to (days ahead)"), default=60, validators=[MinValueValidator(1), MaxValueValidator(365)]
    )
    cancellation_cutoff_hours = models.PositiveIntegerField(
        _("patients may cancel until (hours before)"), default=12, validators=[MaxValueValidator(14 * 24)]
    )
    reminder_offsets_minutes = models.JSONField(_("reminders (minutes before)"), default=list, blank=True)

    class Meta:
        verbose_name = _("booking policy")
        verbose_name_plural = _("booking policies")

    def __str__(self) -> str:
        return f"{self.clinic}"


DEFAULT_REMINDER_OFFSETS_MINUTES = [24 * 60, 60]


class AvailabilityRule(models.Model):
    """A doctor's weekly hours at one clinic, in the clinic's local time."""

    doctor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="availability_rules")
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="availability_rules")
    weekdays = models.JSONField(_("days of the week"), validators=[validate_weekdays])
    start_time = models.TimeField(_("from"))
    end_time = models.TimeField(_("until"))
    slot_minutes = models.PositiveSmallIntegerField(
        _("slot length (minutes)"), default=20, validators=[MinValueValidator(5), MaxValueValidator(240)]
    )
    buffer_minutes = models.PositiveSmallIntegerField(
        _("break between slots (minutes)"), default=0, validators=[MaxValueValidator(120)]
    )
    modes = models.JSONField(_("ways to consult"), validators=[validate_modes])
    valid_from = models.DateField(_("valid from"), null=True, blank=True)
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["doctor", "clinic", "start_time"]
        verbose_name = _("availability rule")
        verbose_name_plural = _("availability rules")
        constraints = [
            models.CheckConstraint(condition=Q(end_time__gt=F("start_time")), name="rule_ends_after_it_starts"),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True)
                | Q(valid_from__isnull=True)
                | Q(valid_until__gte=F("valid_from")),
                name="rule_valid_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.doctor} @ {self.clinic} {self.weekdays} {self.start_time}-{self.end_time}"


class TimeOff(models.Model):
    doctor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="time_off")
    starts_at = models.DateTimeField(_("from"))
    ends_at = models.DateTimeField(_("until"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["starts_at"]
        verbose_name = _("time off")
        verbose_name_plural = _("time off")
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="time_off_ends_after_it_starts")
        ]
        indexes = [models.Index(fields=["doctor", "starts_at"])]

    def __str__(self) -> str:
        return f"{self.doctor} {self.starts_at:%Y-%m-%d}"


class AppointmentStatus(models.TextChoices):
    BOOKED = "booked", _("Booked")
    COMPLETED = "completed", _("Completed")
    NO_SHOW = "no_show", _("Did not come")
    CANCELLED = "cancelled", _("Cancelled")


# Statuses that occupy the doctor's and the patient's time.
HOLDING_STATUSES = (AppointmentStatus.BOOKED, AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW)


class Appointment(models.Model):
    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="appointments")
    doctor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="doctor_appointments")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="appointments")
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"))
    mode = models.CharField(_("way to consult"), max_length=10, choices=ConsultMode.choices)
    status = models.CharField(
        _("status"), max_length=10, choices=AppointmentStatus.choices, default=AppointmentStatus.BOOKED
    )
    reason = models.CharField(_("reason for the visit"), max_length=500, blank=True)
    booked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    rescheduled_from = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="rescheduled_to"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    cancel_reason = models.CharField(_("why it was cancelled"), max_length=300, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    duration_s = models.PositiveIntegerField(null=True, blank=True)
    # Set by a booking, cleared when the worker has written its notices (the
    # patient's confirmation, the doctor's notice, the reminders): the
    # booking itself stays short, and beat's scan finds any left behind.
    notices_pending = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["starts_at"]
        verbose_name = _("appointment")
        verbose_name_plural = _("appointments")
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="appointment_ends_after_it_starts"),
        ]
        indexes = [
            models.Index(fields=["doctor", "starts_at"], name="appointment_doctor_time"),
            models.Index(fields=["patient", "starts_at"], name="appointment_patient_time"),
            models.Index(fields=["clinic", "starts_at"], name="appointment_clinic_time"),
            models.Index(fields=["created_at"], condition=Q(notices_pending=True), name="appointment_notices_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.starts_at:%Y-%m-%d %H:%M} {self.doctor} / {self.patient} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in HOLDING_STATUSES
