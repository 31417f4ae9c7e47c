from django.contrib import admin

from apps.accounts.models import User
from apps.audit.admin_mixins import AuditedModelAdmin
from apps.scheduling.models import Appointment, AvailabilityRule, BookingPolicy, TimeOff


@admin.register(BookingPolicy)
class BookingPolicyAdmin(admin.ModelAdmin[BookingPolicy]):
    list_display = ["clinic", "min_notice_minutes", "max_ahead_days", "cancellation_cutoff_hours"]


@admin.register(AvailabilityRule)
class AvailabilityRuleAdmin(admin.ModelAdmin[AvailabilityRule]):
    list_display = ["doctor", "clinic", "weekdays", "start_time", "end_time", "slot_minutes", "modes"]
    raw_id_fields = ["doctor"]


@admin.register(TimeOff)
class TimeOffAdmin(admin.ModelAdmin[TimeOff]):
    list_display = ["doctor", "starts_at", "ends_at", "reason"]
    raw_id_fields = ["doctor", "created_by"]


@admin.register(Appointment)
class AppointmentAdmin(AuditedModelAdmin):
    list_display = ["starts_at", "doctor", "patient", "clinic", "mode", "status"]
    list_filter = ["status", "mode", "clinic"]
    raw_id_fields = ["patient", "doctor", "booked_by", "cancelled_by", "rescheduled_from"]

    def audit_patient(self, obj: Appointment) -> User:  # type: ignore[override]
        return obj.patient
