"""The append-only, hash-chained audit log.

Each event stores the SHA-256 of the previous event and the SHA-256 of its own
canonical content (which includes the previous hash), so changing or deleting
any row breaks the chain from that row on. Events never carry health data:
only who did what to which object, and of which patient.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

GENESIS_HASH = "0" * 64


class AuditAction(models.TextChoices):
    VIEW = "view", _("View")
    CREATE = "create", _("Create")
    UPDATE = "update", _("Update")
    DELETE = "delete", _("Delete")
    EXPORT = "export", _("Export")
    LOGIN = "login", _("Login")
    LOGOUT = "logout", _("Logout")
    LOGIN_FAILED = "login_failed", _("Failed login")
    ACCESS_DENIED = "access_denied", _("Failed access")


class AuditOutcome(models.TextChoices):
    SUCCESS = "success", _("Success")
    FAILURE = "failure", _("Failure")


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise TypeError("audit events are append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise TypeError("audit events are append-only")


class AuditEvent(models.Model):
    created_at = models.DateTimeField(_("time (UTC)"), db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(_("actor"), max_length=200, blank=True)
    role = models.CharField(_("role"), max_length=20, blank=True)
    action = models.CharField(_("action"), max_length=20, choices=AuditAction.choices)
    object_type = models.CharField(_("object type"), max_length=60, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    patient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    clinic_id = models.BigIntegerField(_("clinic"), null=True, blank=True, db_index=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    request_id = models.CharField(_("request id"), max_length=64, blank=True)
    outcome = models.CharField(_("outcome"), max_length=10, choices=AuditOutcome.choices)
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        indexes = [models.Index(fields=["patient", "created_at"]), models.Index(fields=["actor", "created_at"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action} {self.object_type}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise TypeError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError("audit events are append-only")

    def canonical_content(self) -> bytes:
        content = {
            "created_at": self.created_at.isoformat(timespec="microseconds"),
            "actor_id": self.actor_id,
            "actor_label": self.actor_label,
            "role": self.role,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "patient_id": self.patient_id,
            "clinic_id": self.clinic_id,
            "ip": self.ip,
            "request_id": self.request_id,
            "outcome": self.outcome,
            "reason": self.reason,
            "prev_hash": self.prev_hash,
        }
        return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def compute_hash(self) -> str:
        return hashlib.sha256(self.canonical_content()).hexdigest()


class AuditVerification(models.Model):
    """The result of one run of ``manage.py audit_verify`` (the daily timer's),
    so that pages can say how the last check went without walking the whole
    chain on every view. It is not itself evidence: whoever can write the
    events can write this table too (docs/security.md)."""

    finished_at = models.DateTimeField(_("checked at (UTC)"))
    events = models.PositiveBigIntegerField(_("events checked"))
    head_event_id = models.BigIntegerField(_("newest event checked"), null=True, blank=True)
    problems = models.PositiveIntegerField(_("problems found"))

    class Meta:
        ordering = ["-finished_at", "-id"]
        verbose_name = _("audit log check")
        verbose_name_plural = _("audit log checks")

    def __str__(self) -> str:
        return f"{self.finished_at:%Y-%m-%d %H:%M} {self.events} events, {self.problems} problems"

    @property
    def intact(self) -> bool:
        return self.problems == 0
