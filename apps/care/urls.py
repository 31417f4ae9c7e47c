from django.urls import URLPattern, URLResolver, path

from apps.care import views_chart, views_dashboard

app_name = "care"

urlpatterns: list[URLPattern | URLResolver] = []

# The patient chart (views_chart.py)
urlpatterns += [
    path("patients/<int:patient_id>/", views_chart.chart, name="chart"),
    path("patients/<int:patient_id>/timeline/", views_chart.timeline, name="chart_timeline"),
    path("patients/<int:patient_id>/targets/", views_chart.target_set, name="chart_targets"),
]

# The doctor's dashboard and patient list (views_dashboard.py)
urlpatterns += [
    path("", views_dashboard.dashboard, name="dashboard"),
    path("triage/", views_dashboard.triage, name="triage"),
    path("alerts/<int:alert_id>/acknowledge/", views_dashboard.alert_acknowledge_view, name="alert_acknowledge"),
    path("message/<int:patient_id>/", views_dashboard.patient_message, name="patient_message"),
    path("patients/", views_dashboard.patients, name="patients"),
]
