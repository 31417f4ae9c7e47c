"""Site-admin views of the care records: read-only (the workspace's
services write them, with their checks and audit), and audited reads."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.audit.admin_mixins import AuditedModelAdmin
from apps.care.models import (
    BreakGlassAccess,
    CareTeamMembership,
    ConsultNote,
    Diagnosis,
    NoteAddendum,
    Referral,
)


class ReadOnlyCareAdmin(AuditedModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def audit_patient(self, obj: Any) -> Any:
        return getattr(obj, "patient", None) or getattr(getattr(obj, "note", None), "patient", None)


@admin.register(CareTeamMembership)
class CareTeamMembershipAdmin(ReadOnlyCareAdmin):
    list_display = ["patient", "doctor", "clinic", "added_at", "ended_at"]
    raw_id_fields = ["patient", "doctor", "added_by", "ended_by"]


@admin.register(BreakGlassAccess)
class BreakGlassAccessAdmin(ReadOnlyCareAdmin):
    list_display = ["created_at", "doctor", "patient", "clinic", "expires_at", "ended_at"]
    list_filter = ["clinic"]
    raw_id_fields = ["doctor", "patient"]


@admin.register(Referral)
class ReferralAdmin(ReadOnlyCareAdmin):
    list_display = ["created_at", "patient", "from_doctor", "to_doctor", "to_specialty", "urgency", "status"]
    list_filter = ["status", "urgency"]
    raw_id_fields = ["patient", "from_doctor", "to_doctor", "appointment", "closed_by"]


@admin.register(ConsultNote)
class ConsultNoteAdmin(ReadOnlyCareAdmin):
    list_display = ["created_at", "patient", "author", "status", "signed_at"]
    list_filter = ["status"]
    raw_id_fields = ["appointment", "patient", "author", "follow_up_appointment", "signed_by"]


@admin.register(Diagnosis)
class DiagnosisAdmin(ReadOnlyCareAdmin):
    list_display = ["recorded_at", "patient", "code", "description", "is_primary", "status"]
    list_filter = ["status"]
    raw_id_fields = ["note", "patient", "resolved_by"]


@admin.register(NoteAddendum)
class NoteAddendumAdmin(ReadOnlyCareAdmin):
    list_display = ["created_at", "note", "author", "signed_at"]
    raw_id_fields = ["note", "author"]
