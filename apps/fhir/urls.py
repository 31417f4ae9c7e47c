from django.urls import URLPattern, URLResolver, path

from apps.fhir import api, views

app_name = "fhir"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", api.Root.as_view(), name="root"),
    path("metadata", api.Metadata.as_view(), name="metadata"),
    path("Observation", api.ObservationType.as_view(), name="observations"),
    path("Observation/<str:observation_id>", api.ObservationInstance.as_view(), name="observation"),
    path("Patient/<int:patient_id>", api.PatientInstance.as_view(), name="patient"),
    path("Patient/<int:patient_id>/$everything", api.PatientEverything.as_view(), name="everything"),
    path("Appointment", api.AppointmentType.as_view(), name="appointments"),
    path("Appointment/<int:resource_id>", api.AppointmentInstance.as_view(), name="appointment"),
    path("Encounter", api.EncounterType.as_view(), name="encounters"),
    path("Encounter/<int:resource_id>", api.EncounterInstance.as_view(), name="encounter"),
    path("Condition", api.ConditionType.as_view(), name="conditions"),
    path("Condition/<int:resource_id>", api.ConditionInstance.as_view(), name="condition"),
    path("me/export.json", views.export_mine, name="export"),
    path("me/summary/", views.summary_mine, name="summary"),
]
