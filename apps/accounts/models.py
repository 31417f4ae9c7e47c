from __future__ import annotations

import zoneinfo
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone as dj_timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.phones import phone_display, validate_e164


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("Choose a valid time zone."), code="invalid")


def default_language() -> str:
    return str(settings.LANGUAGE_CODE)


def default_timezone() -> str:
    return str(settings.DEFAULT_USER_TIME_ZONE)


class Language(models.TextChoices):
    ZH_HANS = "zh-hans", "简体中文"
    EN = "en", "English"


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, *, email: str | None, phone: str | None, password: str | None, **extra: Any) -> User:
        if not email and not phone:
            raise ValueError("a user needs an email address or a phone number")
        user = self.model(email=self.normalize_email(email) if email else None, phone=phone or None, **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_user(
        self, email: str | None = None, password: str | None = None, *, phone: str | None = None, **extra: Any
    ) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email=email, phone=phone, password=password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create(email=email, phone=extra.pop("phone", None), password=password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """Anyone who signs in: patient, doctor, clinic admin or site admin.

    Identified by an email address, a phone number (E.164) or both. Roles come
    from the patient profile and from clinic memberships, not from this row.
    """

    email = models.EmailField(_("email address"), unique=True, null=True, blank=True)
    phone = models.CharField(
        _("phone number"), max_length=20, unique=True, null=True, blank=True, validators=[validate_e164]
    )
    phone_verified = models.BooleanField(_("phone verified"), default=False)
    full_name = models.CharField(_("full name"), max_length=150)
    language = models.CharField(_("language"), max_length=10, choices=Language.choices, default=default_language)
    timezone = models.CharField(_("time zone"), max_length=64, default=default_timezone, validators=[validate_timezone])
    is_active = models.BooleanField(_("active"), default=True)
    is_staff = models.BooleanField(_("can use the site admin"), default=False)
    date_joined = models.DateTimeField(_("joined"), default=dj_timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["full_name"]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.CheckConstraint(
                condition=Q(email__isnull=False) | Q(phone__isnull=False), name="user_has_email_or_phone"
            ),
        ]

    def __str__(self) -> str:
        return self.full_name or self.email or phone_display(self.phone or "")

    def get_full_name(self) -> str:
        return self.full_name

    def get_short_name(self) -> str:
        return self.full_name

    @property
    def phone_display(self) -> str:
        return phone_display(self.phone or "")


class Sex(models.TextChoices):
    FEMALE = "female", _("Female")
    MALE = "male", _("Male")
    OTHER = "other", _("Other")
    UNKNOWN = "unknown", _("Prefer not to say")


class GlucoseUnit(models.TextChoices):
    MMOL_L = "mmol/L", "mmol/L"
    MG_DL = "mg/dL", "mg/dL"


class PatientProfile(models.Model):
    """Demographics of a patient. Its presence makes a user a patient."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="patient_profile")
    date_of_birth = models.DateField(_("date of birth"), null=True, blank=True)
    sex = models.CharField(_("sex"), max_length=10, choices=Sex.choices, default=Sex.UNKNOWN)
    glucose_unit = models.CharField(
        _("glucose unit"), max_length=10, choices=GlucoseUnit.choices, default=GlucoseUnit.MMOL_L
    )
    address = models.CharField(_("address"), max_length=300, blank=True)
    village = models.CharField(_("village"), max_length=150, blank=True)
    emergency_contact_name = models.CharField(_("emergency contact"), max_length=150, blank=True)
    emergency_contact_phone = models.CharField(
        _("emergency contact phone"), max_length=20, blank=True, validators=[validate_e164]
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("patient profile")
        verbose_name_plural = _("patient profiles")

    def __str__(self) -> str:
        return str(self.user)


class ConsentKind(models.TextChoices):
    HEALTH_DATA = "health_data", _("Processing of my health data")


class Consent(models.Model):
    """One act of consent: given, and perhaps later withdrawn. Never edited
    otherwise; a new consent after a withdrawal is a new row."""

    patient = models.ForeignKey(User, on_delete=models.CASCADE, related_name="consents")
    kind = models.CharField(_("kind"), max_length=20, choices=ConsentKind.choices)
    version = models.CharField(_("text version"), max_length=20)
    given_at = models.DateTimeField(_("given at"))
    given_by = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="+", help_text=_("The patient, or staff acting for them.")
    )
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)
    withdrawn_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "kind"], condition=Q(withdrawn_at__isnull=True), name="one_active_consent_per_kind"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient} {self.kind} v{self.version}"

    @property
    def is_active(self) -> bool:
        return self.withdrawn_at is None


class PersonalAccessToken(models.Model):
    """A token a user makes for a device gateway or a script. Only its
    SHA-256 is stored; the token itself is shown once."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="access_tokens")
    name = models.CharField(_("name"), max_length=100)
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("access token")
        verbose_name_plural = _("access tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_usable(self) -> bool:
        now = dj_timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
