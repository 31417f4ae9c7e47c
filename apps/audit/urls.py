from django.urls import path

from apps.audit import views

app_name = "audit"

urlpatterns = [
    path("clinics/<int:clinic_id>/", views.clinic_audit_log, name="clinic_log"),
]
