from django.urls import path

from apps.scheduling import api

urlpatterns = [
    path("doctors/", api.DoctorList.as_view(), name="api_doctors"),
    path("doctors/<int:doctor_id>/slots/", api.DoctorSlots.as_view(), name="api_doctor_slots"),
    path("appointments/", api.AppointmentListCreate.as_view(), name="api_appointments"),
    path("appointments/<int:appointment_id>/cancel/", api.AppointmentCancel.as_view(), name="api_appointment_cancel"),
    path(
        "appointments/<int:appointment_id>/reschedule/",
        api.AppointmentReschedule.as_view(),
        name="api_appointment_reschedule",
    ),
]
