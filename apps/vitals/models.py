"""Readings (blood pressure, glucose, heart rate, SpO2, temperature, weight,
height…), the targets a doctor sets for one patient, and the alerts an
urgent or critical reading opens for the patient's doctors.

Values are stored as JSON keyed by the kind's field names (kinds.py), in
the kind's canonical unit: glucose in mmol/L, pressures in mmHg,
temperature in °C, weight in kg. An ECG recording is its own model
(``EcgRecording``): the original file, byte for byte, in private storage,
and what the analysis made of it (docs/ecg-recordings.md).
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


ACKNOWLEDGE_NOTE_MAX_CHARS = 200


class AlertStatus(models.TextChoices):
    OPEN = "open", _("Open")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")


class Alert(models.Model):
    """An urgent or critical reading, or a flagged ECG recording, for the
    patient's doctors to act on (exactly one of the two)."""

    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="vital_alerts")
    reading = models.OneToOneField(Reading, null=True, blank=True, on_delete=models.CASCADE, related_name="alert")
    ecg_recording = models.OneToOneField(
        "EcgRecording", null=True, blank=True, on_delete=models.CASCADE, related_name="alert"
    )
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices)
    status = models.CharField(_("status"), max_length=15, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(_("acknowledged"), null=True, blank=True)
    # What the doctor who acknowledged it did or decided, in a few words
    # (shown with the alert in the patient's chart).
    acknowledge_note = models.CharField(_("note"), max_length=ACKNOWLEDGE_NOTE_MAX_CHARS, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        indexes = [models.Index(fields=["patient", "status"], name="alert_patient_status")]
        constraints = [
            models.CheckConstraint(
                condition=Q(reading__isnull=False, ecg_recording__isnull=True)
                | Q(reading__isnull=True, ecg_recording__isnull=False),
                name="alert_reading_or_ecg",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.severity} alert {self.pk} ({self.status})"


# --- ECG recordings -----------------------------------------------------------------


class EcgStatus(models.TextChoices):
    QUEUED = "queued", _("Waiting for analysis")
    ANALYSING = "analysing", _("Being analysed")
    DONE = "done", _("Analysed")
    FAILED = "failed", _("Could not be analysed")


class EcgFormat(models.TextChoices):
    APPLE_WATCH_CSV = "apple_watch_csv", _("Apple Watch (Health export CSV)")
    GENERIC_CSV = "generic_csv", _("Single-lead CSV")
    WFDB = "wfdb", _("WFDB (zip)")
    EDF = "edf", _("EDF/EDF+")


class EcgRecording(models.Model):
    """One uploaded ECG file and what its analysis made of it.

    The original is kept byte for byte (``sha256`` of it) in the private
    (default) storage under an unguessable ``storage_key``; the analysis
    writes two more files beside it: the filtered signal for the viewer
    (``signal``: int16 µV at ``signal_rate_hz``, a .npy the server reads a
    window of at a time) and the R peaks (``r_peaks``: int32 sample indices
    at ``sample_rate_hz``). None of them has a URL: the original is served
    by a view that checks access, the others only as JSON windows.
    """

    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ecg_recordings")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    storage_key = models.CharField(max_length=32, unique=True, editable=False)
    original = models.FileField(_("original file"), max_length=200, blank=True)
    original_name = models.CharField(_("file name"), max_length=255)
    size_bytes = models.PositiveBigIntegerField(_("size (bytes)"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    file_format = models.CharField(_("format"), max_length=20, choices=EcgFormat.choices)
    status = models.CharField(_("status"), max_length=10, choices=EcgStatus.choices, default=EcgStatus.QUEUED)
    # Why it failed: a stable code, and the message in every language of the
    # site (a reason from the file parser carries its own details).
    failure_code = models.CharField(_("failure"), max_length=40, blank=True)
    failure_messages = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # From the decoded file
    sample_rate_hz = models.FloatField(_("sampling rate (Hz)"), null=True, blank=True)
    duration_s = models.FloatField(_("duration (s)"), null=True, blank=True)
    lead = models.CharField(_("lead"), max_length=32, blank=True)
    recorded_at = models.DateTimeField(_("recorded at"), null=True, blank=True)
    # From the analysis
    summary = models.JSONField(_("analysis"), null=True, blank=True)
    beat_count = models.PositiveIntegerField(null=True, blank=True)
    category = models.CharField(_("category"), max_length=40, blank=True)
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices, blank=True)
    signal = models.FileField(max_length=200, blank=True)
    signal_rate_hz = models.FloatField(null=True, blank=True)
    r_peaks = models.FileField(max_length=200, blank=True)
    created_at = models.DateTimeField(_("uploaded"), auto_now_add=True)
    analysis_started_at = models.DateTimeField(null=True, blank=True)
    analysed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("ECG recording")
        verbose_name_plural = _("ECG recordings")
        constraints = [
            models.UniqueConstraint(fields=["patient", "sha256"], name="one_ecg_per_file"),
        ]
        indexes = [
            models.Index(fields=["patient", "created_at"], name="ecg_patient_time"),
            models.Index(fields=["status", "created_at"], name="ecg_status_time"),
        ]

    def __str__(self) -> str:
        return f"ECG {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in {EcgStatus.DONE, EcgStatus.FAILED}

    @property
    def failure_message(self) -> str:
        """Why it failed, in the active language (English if that one is missing)."""
        from django.utils.translation import get_language

        messages = self.failure_messages or {}
        language = (get_language() or "en").lower()
        return str(messages.get(language) or messages.get("en") or next(iter(messages.values()), ""))
