from django.urls import path

from apps.consults.consumers import ConsultConsumer

websocket_urlpatterns = [path("ws/consults/<int:appointment_id>/", ConsultConsumer.as_asgi())]
