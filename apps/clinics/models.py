from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Language, validate_timezone
from apps.accounts.phones import validate_e164


class Clinic(models.Model):
    name = models.CharField(_("name"), max_length=200)
    timezone = models.CharField(_("time zone"), max_length=64, default="Asia/Shanghai", validators=[validate_timezone])
    address = models.CharField(_("address"), max_length=300, blank=True)
    phone = models.CharField(_("phone number"), max_length=20, blank=True, validators=[validate_e164])
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("clinic")
        verbose_name_plural = _("clinics")

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    DOCTOR = "doctor", _("Doctor")
    ADMIN = "admin", _("Clinic admin")


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=10, choices=Role.choices)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [models.UniqueConstraint(fields=["user", "clinic", "role"], name="one_membership_per_role")]

    def __str__(self) -> str:
        return f"{self.user} — {self.clinic} ({self.get_role_display()})"


class Specialty(models.Model):
    code = models.SlugField(_("code"), max_length=50, unique=True)
    name_en = models.CharField(_("name (English)"), max_length=100)
    name_zh_hans = models.CharField(_("name (Chinese)"), max_length=100)

    class Meta:
        ordering = ["code"]
        verbose_name = _("specialty")
        verbose_name_plural = _("specialties")

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return self.name_zh_hans if (get_language() or "").startswith("zh") else self.name_en


class DoctorProfile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="doctor_profile")
    specialties = models.ManyToManyField(Specialty, blank=True, related_name="doctors", verbose_name=_("specialties"))
    languages = models.JSONField(_("languages spoken"), default=list, blank=True)
    licence_number = models.CharField(_("licence number"), max_length=50, blank=True)
    bio = models.TextField(_("short biography"), max_length=1000, blank=True)

    class Meta:
        verbose_name = _("doctor profile")
        verbose_name_plural = _("doctor profiles")

    def __str__(self) -> str:
        return str(self.user)

    def language_labels(self) -> list[str]:
        names = dict(Language.choices)
        return [str(names.get(code, code)) for code in self.languages]


class Invitation(models.Model):
    """An invitation for a doctor or admin to join a clinic. Only the SHA-256
    of the link's token is stored."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="invitations")
    role = models.CharField(_("role"), max_length=10, choices=Role.choices)
    email = models.EmailField(_("email address"), blank=True)
    phone = models.CharField(_("phone number"), max_length=20, blank=True, validators=[validate_e164])
    full_name = models.CharField(_("full name"), max_length=150, blank=True)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        constraints = [
            models.CheckConstraint(condition=~Q(email="") | ~Q(phone=""), name="invitation_has_email_or_phone"),
        ]

    def __str__(self) -> str:
        return f"{self.email or self.phone} → {self.clinic} ({self.role})"

    def is_usable(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > now
