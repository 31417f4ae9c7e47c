from django.contrib import admin

from apps.notifications.models import Notification, NotificationPreference, QuietHours, SmsOptOut


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin[Notification]):
    list_display = ["created_at", "recipient", "destination", "channel", "template", "status", "attempts", "sent_at"]
    list_filter = ["status", "channel", "category"]
    search_fields = ["idempotency_key", "template", "destination"]
    raw_id_fields = ["recipient", "clinic"]
    readonly_fields = ["context", "attachments", "provider_message_id", "idempotency_key"]


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin[NotificationPreference]):
    list_display = ["user", "category", "sms", "email", "in_app"]
    raw_id_fields = ["user"]


@admin.register(QuietHours)
class QuietHoursAdmin(admin.ModelAdmin[QuietHours]):
    list_display = ["user", "start", "end"]
    raw_id_fields = ["user"]


@admin.register(SmsOptOut)
class SmsOptOutAdmin(admin.ModelAdmin[SmsOptOut]):
    list_display = ["phone", "opted_out_at", "source", "keyword", "opted_in_at"]
    search_fields = ["phone"]
