"""Readings (blood pressure, glucose, heart rate, SpO2, temperature, weight,
height…), the targets a doctor sets for one patient, and the alerts an
urgent or critical reading opens for the patient's doctors.

Values are stored as JSON keyed by the kind's field names (kinds.py), in
the kind's canonical unit: glucose in mmol/L, pressures in mmHg,
temperature in °C, weight in kg. The ECG recordings will be their own
model in this app.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.vitals.flags import Severity, category_label
from apps.vitals.kinds import KIND_CHOICES, GlucoseContext, Kind, kind_get, values_as_numbers


class Source(models.TextChoices):
    MANUAL = "manual", _("Entered by the patient")
    CSV = "csv", _("CSV import")
    API = "api", _("API")
    DEVICE = "device", _("Device")
    STAFF = "staff", _("Entered by staff")


class Reading(models.Model):
    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="readings")
    kind = models.CharField(_("kind"), max_length=30, choices=KIND_CHOICES)
    values = models.JSONField(_("values"), help_text=_("In the kind's canonical unit."))
    context = models.CharField(_("when"), max_length=20, choices=GlucoseContext.CHOICES, blank=True)
    measured_at = models.DateTimeField(_("measured at"))
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    note = models.CharField(_("note"), max_length=500, blank=True)
    category = models.CharField(_("category"), max_length=40)
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices)
    rule = models.CharField(_("rule"), max_length=20, help_text=_("The rule set that decided the flag."))
    # SHA-256 of kind, time (to the second), context and canonical values:
    # the same reading sent twice is stored once.
    content_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(_("recorded"), auto_now_add=True)

    class Meta:
        ordering = ["-measured_at", "-id"]
        verbose_name = _("reading")
        verbose_name_plural = _("readings")
        constraints = [
            models.UniqueConstraint(fields=["patient", "content_hash"], name="one_reading_per_content"),
        ]
        indexes = [
            models.Index(fields=["patient", "kind", "measured_at"], name="reading_patient_kind_time"),
            models.Index(fields=["patient", "measured_at"], name="reading_patient_time"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.measured_at:%Y-%m-%d %H:%M} ({self.severity})"

    @property
    def kind_spec(self) -> Kind:
        return kind_get(self.kind)

    @property
    def numbers(self) -> dict[str, Decimal]:
        return values_as_numbers(self.values)

    @property
    def category_label(self) -> str:
        return category_label(self.category)


class PatientTarget(models.Model):
    """A doctor's target for one value of one kind for one patient, e.g.
    systolic below 130, or SpO2 from 88 to 92 for a patient with COPD. It
    replaces the default bands of flags.py (never the critical ones)."""

    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="vital_targets")
    kind = models.CharField(_("kind"), max_length=30, choices=KIND_CHOICES)
    field = models.CharField(_("value"), max_length=30)
    low = models.DecimalField(_("lowest"), max_digits=7, decimal_places=2, null=True, blank=True)
    high = models.DecimalField(_("highest"), max_digits=7, decimal_places=2, null=True, blank=True)
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("patient target")
        verbose_name_plural = _("patient targets")
        constraints = [
            models.UniqueConstraint(fields=["patient", "kind", "field"], name="one_target_per_value"),
            models.CheckConstraint(condition=Q(low__isnull=False) | Q(high__isnull=False), name="target_has_a_bound"),
            models.CheckConstraint(
                condition=Q(low__isnull=True) | Q(high__isnull=True) | Q(low__lt=models.F("high")),
                name="target_low_below_high",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient_id} {self.kind}.{self.field} [{self.low}, {self.high}]"


class AlertStatus(models.TextChoices):
    OPEN = "open", _("Open")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")


class Alert(models.Model):
    """An urgent or critical reading, for the patient's doctors to act on."""

    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="vital_alerts")
    reading = models.OneToOneField(Reading, on_delete=models.CASCADE, related_name="alert")
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices)
    status = models.CharField(_("status"), max_length=15, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(_("acknowledged"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        indexes = [models.Index(fields=["patient", "status"], name="alert_patient_status")]

    def __str__(self) -> str:
        return f"{self.severity} alert {self.pk} ({self.status})"
