from django.urls import URLPattern, URLResolver, path

from apps.care import views_chart

app_name = "care"

urlpatterns: list[URLPattern | URLResolver] = []

# The patient chart (views_chart.py)
urlpatterns += [
    path("patients/<int:patient_id>/", views_chart.chart, name="chart"),
    path("patients/<int:patient_id>/timeline/", views_chart.timeline, name="chart_timeline"),
    path("patients/<int:patient_id>/targets/", views_chart.target_set, name="chart_targets"),
]
