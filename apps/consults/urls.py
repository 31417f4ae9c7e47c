from django.urls import path

from apps.consults import views, views_check

app_name = "consults"

urlpatterns = [
    path("<int:appointment_id>/", views.room, name="room"),
    path("<int:appointment_id>/check/", views_check.check_page, name="check"),
    path("<int:appointment_id>/check/offer/", views_check.check_offer, name="check_offer"),
    path("<int:appointment_id>/check/result/", views_check.check_result, name="check_result"),
]
