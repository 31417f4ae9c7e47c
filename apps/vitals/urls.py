from django.urls import path

from apps.vitals import views

app_name = "vitals"

urlpatterns = [
    path("", views.my_readings, name="mine"),
    path("new/<slug:kind>/", views.entry, name="entry"),
    path("readings/<int:reading_id>/", views.reading_detail, name="reading"),
    path("patients/", views.patient_chooser, name="patients"),
    path("patients/<int:patient_id>/", views.patient_readings, name="patient_readings"),
    path("patients/<int:patient_id>/new/<slug:kind>/", views.staff_entry, name="staff_entry"),
]
