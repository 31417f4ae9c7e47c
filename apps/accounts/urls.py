from django.urls import path

from apps.accounts import views

app_name = "accounts"

urlpatterns = [
    path("", views.profile, name="profile"),
    path("consent/", views.consent, name="consent"),
    path("consent/withdraw/", views.consent_withdraw_view, name="consent_withdraw"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:token_id>/revoke/", views.token_revoke_view, name="token_revoke"),
]
