from django.contrib import admin

from apps.clinics.models import Clinic, DoctorProfile, Invitation, Membership, Specialty


class MembershipInline(admin.TabularInline[Membership, Clinic]):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Clinic)
class ClinicAdmin(admin.ModelAdmin[Clinic]):
    list_display = ["name", "timezone", "phone", "is_active"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(Specialty)
class SpecialtyAdmin(admin.ModelAdmin[Specialty]):
    list_display = ["code", "name_en", "name_zh_hans"]


@admin.register(DoctorProfile)
class DoctorProfileAdmin(admin.ModelAdmin[DoctorProfile]):
    list_display = ["user", "licence_number"]
    raw_id_fields = ["user"]
    filter_horizontal = ["specialties"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin[Invitation]):
    list_display = ["clinic", "role", "email", "phone", "created_at", "accepted_at", "revoked_at"]
    readonly_fields = ["token_hash"]
