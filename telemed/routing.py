"""WebSocket routes of every app, collected in one place."""

from django.urls import URLPattern

from apps.consults.routing import websocket_urlpatterns as consult_routes
from apps.notifications.routing import websocket_urlpatterns as notification_routes

websocket_urlpatterns: list[URLPattern] = [*notification_routes, *consult_routes]
