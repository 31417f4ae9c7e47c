from django.urls import URLPattern, URLResolver, path

from apps.care import views, views_chart, views_dashboard, views_notes

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
    path("today/", views_dashboard.today, name="today"),
    path("alerts/<int:alert_id>/acknowledge/", views_dashboard.alert_acknowledge_view, name="alert_acknowledge"),
    path("message/<int:patient_id>/", views_dashboard.patient_message, name="patient_message"),
    path("book/<int:patient_id>/", views_dashboard.patient_book, name="patient_book"),
    path("patients/", views_dashboard.patients, name="patients"),
]

# Consult notes, diagnoses and the ICD-10 search (views_notes.py)
urlpatterns += [
    path("appointments/<int:appointment_id>/note/", views_notes.note_editor, name="note_editor"),
    path("notes/<int:note_id>/", views_notes.note_detail, name="note"),
    path("notes/<int:note_id>/autosave/", views_notes.note_autosave, name="note_autosave"),
    path("notes/<int:note_id>/diagnoses/", views_notes.note_diagnosis_add, name="note_diagnosis_add"),
    path(
        "notes/<int:note_id>/diagnoses/<int:diagnosis_id>/remove/",
        views_notes.note_diagnosis_remove,
        name="note_diagnosis_remove",
    ),
    path("notes/<int:note_id>/addenda/", views_notes.note_addendum, name="note_addendum"),
    path("notes/<int:note_id>/follow-up/", views_notes.note_follow_up, name="note_follow_up"),
    path("diagnoses/<int:diagnosis_id>/resolve/", views_notes.problem_resolve, name="problem_resolve"),
    path("icd10/", views_notes.icd10_search_view, name="icd10_search"),
]

# Care teams, break-glass and referrals (views.py)
urlpatterns += [
    path("patients/<int:patient_id>/care-team/", views.care_team, name="care_team"),
    path("care-team/<int:membership_id>/remove/", views.care_team_remove_view, name="care_team_remove"),
    path("break-glass/", views.break_glass, name="break_glass"),
    path("break-glass/<int:access_id>/end/", views.break_glass_end_view, name="break_glass_end"),
    path("clinics/<int:clinic_id>/break-glass/", views.break_glass_clinic, name="break_glass_clinic"),
    path("patients/<int:patient_id>/refer/", views.referral_new, name="referral_new"),
    path("referrals/", views.referrals, name="referrals"),
    path("referrals/<int:referral_id>/", views.referral_detail, name="referral_detail"),
    path("referrals/<int:referral_id>/accept/", views.referral_accept_view, name="referral_accept"),
    path("referrals/<int:referral_id>/decline/", views.referral_decline_view, name="referral_decline"),
    path("referrals/<int:referral_id>/complete/", views.referral_complete_view, name="referral_complete"),
    path("referrals/<int:referral_id>/withdraw/", views.referral_cancel_view, name="referral_cancel"),
    path("my-referrals/", views.my_referrals, name="my_referrals"),
]
