from django.urls import path

from apps.notifications import views

app_name = "notifications"

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("read-all/", views.mark_all_read, name="mark_all_read"),
    path("<int:notification_id>/open/", views.open_notification, name="open"),
    path("settings/", views.preferences, name="preferences"),
    path("outbox/", views.outbox, name="outbox"),
    path("sms/inbound/", views.sms_inbound, name="sms_inbound"),
    path("clinics/<int:clinic_id>/", views.clinic_delivery, name="clinic_delivery"),
    path("clinics/<int:clinic_id>/<int:notification_id>/retry/", views.clinic_retry, name="clinic_retry"),
]
