from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, HttpResponseServerError, JsonResponse
from django.shortcuts import redirect, render
from django.template import loader
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django.views.i18n import set_language as django_set_language

from apps.accounts.models import Language, User
from apps.accounts.selectors import consent_is_current
from apps.clinics.selectors import UserRole, clinics_administered_by, clinics_of_doctor, user_roles


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The start page of each role; visitors go to the sign-in page."""
    if not request.user.is_authenticated:
        return redirect("account_login")
    return _home_for(request, request.user)


def _home_for(request: HttpRequest, user: User) -> HttpResponse:
    roles = user_roles(user=user)
    if UserRole.DOCTOR in roles:
        # The doctor's dashboard (apps/care), with their clinics' admin links
        # when they also run one.
        from apps.care.views_dashboard import dashboard_page

        return dashboard_page(request)  # type: ignore[arg-type]  # signed in: an AuthedRequest
    if UserRole.CLINIC_ADMIN in roles:
        return render(
            request,
            "core/home_staff.html",
            {
                "doctor_clinics": clinics_of_doctor(user=user) if UserRole.DOCTOR in roles else [],
                "admin_clinics": clinics_administered_by(user=user) if UserRole.CLINIC_ADMIN in roles else [],
            },
        )
    if UserRole.PATIENT in roles:
        return render(request, "core/home_patient.html", {"has_consent": consent_is_current(patient=user)})
    if UserRole.SITE_ADMIN in roles:
        return redirect("admin:index")
    return render(request, "core/home_other.html")


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """Django's language switch, which also remembers the choice on the
    signed-in user's account."""
    code = request.POST.get("language", "")
    if request.user.is_authenticated and code in Language.values:
        User.objects.filter(pk=request.user.pk).update(language=code)
    response = django_set_language(request)
    if not isinstance(response, HttpResponseRedirect):
        return response
    target = response["Location"]
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect("core:home")
    return response


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database readiness for load balancers (no data shown)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


def error_403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "403.html", status=403)


def error_404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "404.html", status=404)


def error_500(request: HttpRequest) -> HttpResponse:
    # No request context: the page must render even when the database is down.
    return HttpResponseServerError(loader.render_to_string("500.html"))
