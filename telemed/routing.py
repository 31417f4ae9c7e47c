"""WebSocket routes of every app, collected in one place."""

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
