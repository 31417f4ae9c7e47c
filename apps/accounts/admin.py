from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Consent, PatientProfile, User
from apps.audit.admin_mixins import AuditedModelAdmin


@admin.register(User)
class UserAdmin(AuditedModelAdmin, DjangoUserAdmin):
    ordering = ["id"]
    list_display = ["id", "full_name", "email", "phone", "is_active", "is_staff"]
    search_fields = ["full_name", "email", "phone"]
    list_filter = ["is_active", "is_staff", "is_superuser", "language"]
    fieldsets = (
        (None, {"fields": ("email", "phone", "phone_verified", "password")}),
        (_("Profile"), {"fields": ("full_name", "language", "timezone")}),
        (_("Permissions"), {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        (_("Dates"), {"fields": ("last_login", "date_joined")}),
    )

    def audit_patient(self, obj: User) -> User | None:  # type: ignore[override]
        return obj if hasattr(obj, "patient_profile") else None

    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "phone", "full_name", "password1", "password2")}),
    )


@admin.register(PatientProfile)
class PatientProfileAdmin(AuditedModelAdmin):
    list_display = ["user", "village", "sex"]
    search_fields = ["user__full_name", "user__phone"]
    raw_id_fields = ["user"]

    def audit_patient(self, obj: PatientProfile) -> User:  # type: ignore[override]
        return obj.user


@admin.register(Consent)
class ConsentAdmin(AuditedModelAdmin):
    list_display = ["patient", "kind", "version", "given_at", "withdrawn_at"]
    readonly_fields = ["patient", "kind", "version", "given_at", "given_by", "withdrawn_at", "withdrawn_by"]

    def audit_patient(self, obj: Consent) -> User:  # type: ignore[override]
        return obj.patient
