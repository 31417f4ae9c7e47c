from django.urls import path

from apps.scheduling import views

app_name = "scheduling"

urlpatterns = [
    path("", views.my_appointments, name="mine"),
    path("find/", views.find_doctor, name="find"),
    path("doctors/<int:doctor_id>/clinics/<int:clinic_id>/", views.doctor_week, name="doctor_week"),
    path("doctors/<int:doctor_id>/clinics/<int:clinic_id>/book/", views.book, name="book"),
    path("<int:appointment_id>/cancel/", views.cancel, name="cancel"),
    path("<int:appointment_id>/reschedule/", views.reschedule, name="reschedule"),
    path("<int:appointment_id>/calendar.ics", views.calendar_file, name="calendar"),
    path("clinics/<int:clinic_id>/calendar/", views.clinic_calendar_view, name="clinic_calendar"),
    path("my-schedule/", views.doctor_calendar_view, name="doctor_calendar"),
    path("clinics/<int:clinic_id>/book/", views.staff_book, name="staff_book"),
]
