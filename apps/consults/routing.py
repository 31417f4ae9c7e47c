from django.urls import path

from apps.consults.consumers import ConsultConsumer, WaitingRoomConsumer

websocket_urlpatterns = [
    path("ws/consults/waiting/", WaitingRoomConsumer.as_asgi()),
    path("ws/consults/<int:appointment_id>/", ConsultConsumer.as_asgi()),
]
