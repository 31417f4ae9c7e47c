from django.urls import path

from apps.vitals import views, views_chart, views_ecg, views_import

app_name = "vitals"

urlpatterns = [
    path("", views.my_readings, name="mine"),
    path("new/<slug:kind>/", views.entry, name="entry"),
    path("readings/<int:reading_id>/", views.reading_detail, name="reading"),
    path("patients/", views.patient_chooser, name="patients"),
    path("patients/<int:patient_id>/", views.patient_readings, name="patient_readings"),
    path("patients/<int:patient_id>/new/<slug:kind>/", views.staff_entry, name="staff_entry"),
    path("import/", views_import.import_mine, name="import"),
    path("import/confirm/", views_import.import_mine_confirm, name="import_confirm"),
    path("import/template.csv", views_import.import_template, name="import_template"),
    path("patients/<int:patient_id>/import/", views_import.staff_import, name="staff_import"),
    path("patients/<int:patient_id>/import/confirm/", views_import.staff_import_confirm, name="staff_import_confirm"),
    path("chart.json", views_chart.chart_mine, name="chart"),
    path("patients/<int:patient_id>/chart.json", views_chart.chart_patient, name="patient_chart"),
]
urlpatterns += [
    path("ecg/", views_ecg.my_recordings, name="ecg_mine"),
    path("ecg/upload/", views_ecg.upload, name="ecg_upload"),
    path("ecg/<int:recording_id>/", views_ecg.recording, name="ecg_recording"),
    path("ecg/<int:recording_id>/status/", views_ecg.status, name="ecg_status"),
    path("ecg/<int:recording_id>/signal/", views_ecg.signal, name="ecg_signal"),
    path("ecg/<int:recording_id>/overview/", views_ecg.overview, name="ecg_overview"),
    path("ecg/<int:recording_id>/original/", views_ecg.original, name="ecg_original"),
    path("patients/<int:patient_id>/ecg/", views_ecg.patient_recordings, name="ecg_patient"),
    path("patients/<int:patient_id>/ecg/upload/", views_ecg.staff_upload, name="ecg_staff_upload"),
]
