from django.urls import path

from apps.clinics import views

app_name = "clinics"

urlpatterns = [
    path("<int:clinic_id>/staff/", views.staff, name="staff"),
    path(
        "<int:clinic_id>/invitations/<int:invitation_id>/revoke/",
        views.invitation_revoke_view,
        name="invitation_revoke",
    ),
]
