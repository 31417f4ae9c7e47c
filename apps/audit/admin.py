from django.contrib import admin
from django.http import HttpRequest

from apps.audit.models import AuditEvent, AuditVerification


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin[AuditEvent]):
    list_display = ["created_at", "actor_label", "role", "action", "object_type", "object_id", "outcome"]
    list_filter = ["action", "outcome", "role"]
    search_fields = ["actor_label", "object_type", "object_id", "request_id"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False


@admin.register(AuditVerification)
class AuditVerificationAdmin(admin.ModelAdmin[AuditVerification]):
    """The results of ``audit_verify``, read-only (the command writes them)."""

    list_display = ["finished_at", "events", "head_event_id", "problems"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditVerification | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditVerification | None = None) -> bool:
        return False
