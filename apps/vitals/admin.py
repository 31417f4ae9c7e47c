from django.contrib import admin

from apps.accounts.models import User
from apps.audit.admin_mixins import AuditedModelAdmin
from apps.vitals.models import Alert, PatientTarget, Reading


@admin.register(Reading)
class ReadingAdmin(AuditedModelAdmin):
    list_display = ["measured_at", "patient", "kind", "severity", "category", "source"]
    list_filter = ["kind", "severity", "source"]
    raw_id_fields = ["patient", "entered_by"]
    readonly_fields = ["content_hash", "category", "severity", "rule"]

    def audit_patient(self, obj: Reading) -> User:  # type: ignore[override]
        return obj.patient


@admin.register(PatientTarget)
class PatientTargetAdmin(AuditedModelAdmin):
    list_display = ["patient", "kind", "field", "low", "high", "set_by", "updated_at"]
    raw_id_fields = ["patient", "set_by"]

    def audit_patient(self, obj: PatientTarget) -> User:  # type: ignore[override]
        return obj.patient


@admin.register(Alert)
class AlertAdmin(AuditedModelAdmin):
    list_display = ["created_at", "patient", "severity", "status"]
    list_filter = ["severity", "status"]
    raw_id_fields = ["patient", "reading", "acknowledged_by"]

    def audit_patient(self, obj: Alert) -> User:  # type: ignore[override]
        return obj.patient
