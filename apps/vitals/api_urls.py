from django.urls import path

from apps.vitals import api

urlpatterns = [
    path("readings/", api.ReadingListCreate.as_view(), name="api_readings"),
]
