from django.urls import path

from apps.consults import views

app_name = "consults"

urlpatterns = [
    path("<int:appointment_id>/", views.room, name="room"),
]
