from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.accounts.views import signup
from apps.clinics.views import invitation_accept_view
from apps.scheduling.views_appointment import appointment_short_link

admin.autodiscover()
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]  # MFA and rate limits apply
admin.site.site_header = "Telemed"

urlpatterns = [
    path("accounts/signup/", signup, name="account_signup"),
    path("accounts/", include("allauth.urls")),
    path("me/", include("apps.accounts.urls")),
    path("clinics/", include("apps.clinics.urls")),
    # Short: invitation and appointment links travel by SMS.
    path("i/<str:token>/", invitation_accept_view, name="invitation_accept"),
    path("a/<int:appointment_id>/", appointment_short_link, name="appointment_short"),
    path("notifications/", include("apps.notifications.urls")),
    path("appointments/", include("apps.scheduling.urls")),
    path("consults/", include("apps.consults.urls")),
    path("vitals/", include("apps.vitals.urls")),
    path("care/", include("apps.care.urls")),
    path("fhir/", include("apps.fhir.urls")),
    path("audit/", include("apps.audit.urls")),
    path("api/v1/", include("apps.scheduling.api_urls")),
    path("api/v1/", include("apps.vitals.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api_schema"), name="api_docs"),
    path("admin/", admin.site.urls),
    path("", include("apps.core.urls")),
]

handler403 = "apps.core.views.error_403"
handler404 = "apps.core.views.error_404"
handler500 = "apps.core.views.error_500"
