"""The consult room of a video appointment: its state, who is in it, what
happened in it (events) and its chat.

One ``Consult`` per appointment, made when a participant first opens the
room. Presence rows say who has a socket open now; events are the lasting
record (joined, left, started, media mode changes, check results, ended).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.scheduling.models import Appointment

CHAT_MAX_CHARS = 2000


class ConsultState(models.TextChoices):
    WAITING = "waiting", _("Waiting for the doctor")
    IN_PROGRESS = "in_progress", _("In progress")
    ENDED = "ended", _("Ended")


class MediaMode(models.TextChoices):
    VIDEO = "video", _("Video")
    AUDIO = "audio", _("Audio only")
    CHAT = "chat", _("Chat only")


class ParticipantRole(models.TextChoices):
    PATIENT = "patient", _("Patient")
    DOCTOR = "doctor", _("Doctor")


class Consult(models.Model):
    appointment = models.OneToOneField(Appointment, on_delete=models.PROTECT, related_name="consult")
    state = models.CharField(_("state"), max_length=12, choices=ConsultState.choices, default=ConsultState.WAITING)
    media_mode = models.CharField(_("media"), max_length=8, choices=MediaMode.choices, default=MediaMode.VIDEO)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    # The patient's latest pre-call check: rtt_ms, loss_pct, bitrate_kbps,
    # relay_ok, recommendation (video/audio/chat) and checked_at (ISO 8601).
    check_result = models.JSONField(_("pre-call check"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("consult")
        verbose_name_plural = _("consults")

    def __str__(self) -> str:
        return f"consult {self.appointment_id} ({self.state})"


class ConsultPresence(models.Model):
    """A participant with a socket open in the room now. ``channel_name``
    names that socket: a newer socket of the same user takes the row over, so
    the older one's goodbye removes nothing. ``seen_at`` is refreshed while
    the socket lives; a row not refreshed for a while (its server process
    died) no longer counts."""

    consult = models.ForeignKey(Consult, on_delete=models.CASCADE, related_name="presences")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    role = models.CharField(max_length=10, choices=ParticipantRole.choices)
    channel_name = models.CharField(max_length=200)
    joined_at = models.DateTimeField()
    seen_at = models.DateTimeField()
    # The latest connection quality the client measured: rtt_ms, loss_pct, bitrate_kbps.
    quality = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["consult", "user"], name="one_presence_per_user")]

    def __str__(self) -> str:
        return f"{self.user_id} in consult {self.consult_id}"


class ConsultEventKind(models.TextChoices):
    OPENED = "opened", _("Room opened")
    JOINED = "joined", _("Joined")
    LEFT = "left", _("Left")
    STARTED = "started", _("Started")
    MEDIA_CHANGED = "media_changed", _("Media changed")
    CHECK_RESULT = "check_result", _("Pre-call check")
    ENDED = "ended", _("Ended")


class ConsultEvent(models.Model):
    consult = models.ForeignKey(Consult, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(_("what"), max_length=16, choices=ConsultEventKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(_("when"))

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("consult event")
        verbose_name_plural = _("consult events")
        indexes = [models.Index(fields=["consult", "at"])]

    def __str__(self) -> str:
        return f"{self.consult_id} {self.kind} {self.at:%H:%M:%S}"


class ChatMessage(models.Model):
    consult = models.ForeignKey(Consult, on_delete=models.CASCADE, related_name="chat_messages")
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField(_("message"), max_length=CHAT_MAX_CHARS)
    sent_at = models.DateTimeField(_("sent"))

    class Meta:
        ordering = ["id"]
        verbose_name = _("chat message")
        verbose_name_plural = _("chat messages")

    def __str__(self) -> str:
        return f"{self.consult_id} #{self.pk}"
