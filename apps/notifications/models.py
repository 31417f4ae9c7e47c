"""The notification outbox.

Each row is one message on one channel. Rows are written in the caller's
transaction and delivered by Celery; the row's status is the guard that
makes delivery happen once, whatever the number of task runs.
"""

from __future__ import annotations

from datetime import time

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Category(models.TextChoices):
    APPOINTMENT = "appointment", _("Appointments")
    CONSULT = "consult", _("Consults")
    READINGS_ALERT = "readings_alert", _("Reading alerts")
    ACCOUNT = "account", _("Account and security")


class Channel(models.TextChoices):
    SMS = "sms", _("SMS")
    EMAIL = "email", _("Email")
    IN_APP = "in_app", _("In the app")


class Status(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed, will retry")
    DEAD = "dead", _("Not delivered")
    WITHDRAWN = "withdrawn", _("Withdrawn (no longer needed)")


class Notification(models.Model):
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    # For messages to someone without an account (an invitation, a code for
    # an unknown number): the phone number or email address itself.
    destination = models.CharField(_("destination"), max_length=254, blank=True)
    clinic = models.ForeignKey(
        "clinics.Clinic", null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )
    category = models.CharField(_("category"), max_length=20, choices=Category.choices)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    template = models.CharField(_("template"), max_length=100)
    context = models.JSONField(_("context"), default=dict, blank=True)
    attachments = models.JSONField(default=list, blank=True)
    language = models.CharField(_("language"), max_length=10)
    urgent = models.BooleanField(_("urgent"), default=False)
    sensitive = models.BooleanField(default=False, help_text=_("Its context is erased once it is sent."))
    idempotency_key = models.CharField(_("idempotency key"), max_length=200)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    due_at = models.DateTimeField(_("due"))
    enqueued_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    provider_message_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key", "channel"], name="one_notification_per_key_and_channel"),
            models.CheckConstraint(
                condition=Q(recipient__isnull=False) | ~Q(destination=""), name="notification_has_an_addressee"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "due_at"], name="notification_due"),
            models.Index(fields=["recipient", "channel", "read_at"], name="notification_unread"),
            models.Index(fields=["clinic", "status", "created_at"], name="notification_clinic"),
        ]

    def __str__(self) -> str:
        return f"{self.template} → {self.recipient_id or self.destination} ({self.channel}, {self.status})"


class NotificationPreference(models.Model):
    """Which channels a user wants for one category. No row: the defaults."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    category = models.CharField(_("category"), max_length=20, choices=Category.choices)
    sms = models.BooleanField(_("SMS"), default=True)
    email = models.BooleanField(_("Email"), default=True)
    in_app = models.BooleanField(_("In the app"), default=True)

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")
        constraints = [models.UniqueConstraint(fields=["user", "category"], name="one_preference_per_category")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.category}"


DEFAULT_QUIET_START = time(22, 0)
DEFAULT_QUIET_END = time(7, 0)


class QuietHours(models.Model):
    """When non-urgent SMS wait, in the user's own time zone."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quiet_hours")
    start = models.TimeField(_("quiet from"), default=DEFAULT_QUIET_START)
    end = models.TimeField(_("quiet until"), default=DEFAULT_QUIET_END)

    class Meta:
        verbose_name = _("quiet hours")
        verbose_name_plural = _("quiet hours")

    def __str__(self) -> str:
        return f"{self.user_id} {self.start}-{self.end}"


class SmsOptOutSource(models.TextChoices):
    KEYWORD = "keyword", _("Reply to an SMS")
    USER = "user", _("The user's settings")
    STAFF = "staff", _("Clinic staff")


class SmsOptOut(models.Model):
    """A phone number that asked for no more SMS (STOP). Opting in again
    closes the row; the history stays."""

    phone = models.CharField(_("phone number"), max_length=20, db_index=True)
    opted_out_at = models.DateTimeField(_("opted out"))
    source = models.CharField(_("how"), max_length=10, choices=SmsOptOutSource.choices)
    keyword = models.CharField(_("keyword"), max_length=40, blank=True)
    opted_in_at = models.DateTimeField(_("opted in again"), null=True, blank=True)

    class Meta:
        ordering = ["-opted_out_at"]
        verbose_name = _("SMS opt-out")
        verbose_name_plural = _("SMS opt-outs")
        constraints = [
            models.UniqueConstraint(fields=["phone"], condition=Q(opted_in_at__isnull=True), name="one_active_opt_out")
        ]

    def __str__(self) -> str:
        return self.phone


class OutboxMessage(models.Model):
    """What the console backends 'sent' (embedded mode only): the outbox page
    shows these so a newcomer can read a sign-in code."""

    channel = models.CharField(max_length=10, choices=Channel.choices)
    to = models.CharField(max_length=254)
    subject = models.CharField(max_length=300, blank=True)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.channel} to {self.to}"
