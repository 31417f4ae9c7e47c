from django.urls import path

from apps.scheduling import views, views_appointment, views_hours

app_name = "scheduling"

urlpatterns = [
    path("", views.my_appointments, name="mine"),
    path("find/", views.find_doctor, name="find"),
    path("doctors/<int:doctor_id>/clinics/<int:clinic_id>/", views.doctor_week, name="doctor_week"),
    path("doctors/<int:doctor_id>/clinics/<int:clinic_id>/book/", views.book, name="book"),
    path("<int:appointment_id>/", views_appointment.appointment_detail, name="detail"),
    path("<int:appointment_id>/staff-cancel/", views_appointment.staff_cancel, name="staff_cancel"),
    path("<int:appointment_id>/staff-reschedule/", views_appointment.staff_reschedule, name="staff_reschedule"),
    path("<int:appointment_id>/mark/", views_appointment.mark, name="mark"),
    path("<int:appointment_id>/cancel/", views.cancel, name="cancel"),
    path("<int:appointment_id>/reschedule/", views.reschedule, name="reschedule"),
    path("<int:appointment_id>/calendar.ics", views.calendar_file, name="calendar"),
    path("clinics/<int:clinic_id>/calendar/", views.clinic_calendar_view, name="clinic_calendar"),
    path("my-schedule/", views.doctor_calendar_view, name="doctor_calendar"),
    path("clinics/<int:clinic_id>/book/", views.staff_book, name="staff_book"),
    path("clinics/<int:clinic_id>/hours/", views_hours.hours, name="hours"),
    path("clinics/<int:clinic_id>/hours/policy/", views_hours.booking_policy, name="booking_policy"),
    path(
        "clinics/<int:clinic_id>/hours/doctors/<int:doctor_id>/rules/new/", views_hours.rule_create, name="rule_create"
    ),
    path("clinics/<int:clinic_id>/hours/rules/<int:rule_id>/", views_hours.rule_edit, name="rule_edit"),
    path("clinics/<int:clinic_id>/hours/rules/<int:rule_id>/delete/", views_hours.rule_delete, name="rule_delete"),
    path(
        "clinics/<int:clinic_id>/hours/doctors/<int:doctor_id>/time-off/new/",
        views_hours.time_off_add,
        name="time_off_create",
    ),
    path(
        "clinics/<int:clinic_id>/hours/time-off/<int:time_off_id>/delete/",
        views_hours.time_off_remove,
        name="time_off_delete",
    ),
]
