from __future__ import annotations

import time
import zoneinfo
from collections.abc import Callable

from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from apps.clinics.selectors import user_is_staff_member

SESSION_LOGIN_AT = "telemed_login_at"
SESSION_SEEN_AT = "telemed_seen_at"
_SEEN_WRITE_EVERY_S = 60


class SessionLifetimeMiddleware:
    """Staff sessions end after STAFF_SESSION_IDLE_S without a request and
    STAFF_SESSION_MAX_S after sign-in, whatever the activity."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and user_is_staff_member(user=user):
            now = time.time()
            session = request.session
            login_at = session.get(SESSION_LOGIN_AT, now)
            seen_at = session.get(SESSION_SEEN_AT, now)
            if now - seen_at > settings.STAFF_SESSION_IDLE_S or now - login_at > settings.STAFF_SESSION_MAX_S:
                logout(request)
                messages.info(request, _("Your session ended for your security. Please sign in again."))
                return HttpResponseRedirect(reverse("account_login") + "?next=" + request.path)
            session.setdefault(SESSION_LOGIN_AT, login_at)
            if now - seen_at >= _SEEN_WRITE_EVERY_S or SESSION_SEEN_AT not in session:
                session[SESSION_SEEN_AT] = now
        return self.get_response(request)


class UserPreferencesMiddleware:
    """Every page a signed-in user sees is in their language and time zone."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        zone_name = settings.DEFAULT_USER_TIME_ZONE
        if user.is_authenticated:
            translation.activate(user.language)
            request.LANGUAGE_CODE = user.language
            zone_name = user.timezone
        try:
            timezone.activate(zoneinfo.ZoneInfo(zone_name))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.activate(zoneinfo.ZoneInfo(settings.DEFAULT_USER_TIME_ZONE))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


# Paths a staff member may use before enrolling in MFA: sign-in/out and
# account pages (where enrolment lives), the language switch, static files.
MFA_EXEMPT_PREFIXES = ("/accounts/", "/i18n/", "/static/", "/healthz")


def user_has_mfa(user: object) -> bool:
    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


class StaffMfaRequiredMiddleware:
    """Doctors, clinic admins and site admins must enrol in TOTP MFA before
    any other page opens for them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            user.is_authenticated
            and not request.path.startswith(MFA_EXEMPT_PREFIXES)
            and user_is_staff_member(user=user)
            and not user_has_mfa(user)
        ):
            messages.warning(request, _("Staff accounts need two-factor authentication. Set it up to continue."))
            return HttpResponseRedirect(reverse("mfa_activate_totp"))
        return self.get_response(request)
