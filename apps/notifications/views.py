from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.crypto import constant_time_compare
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.decorators import role_required
from apps.accounts.phones import phone_normalize
from apps.clinics.selectors import UserRole, clinic_get_for_admin
from apps.core.http import AuthedRequest
from apps.notifications.forms import DeliveryFilterForm, PreferencesForm
from apps.notifications.models import Category, OutboxMessage, QuietHours, SmsOptOutSource, Status
from apps.notifications.rendering import notification_render
from apps.notifications.selectors import clinic_notification_get, clinic_notifications, in_app_notifications_for
from apps.notifications.services import (
    notification_preferences_update,
    notification_retry,
    notifications_mark_read,
    preferred_channels,
    sms_inbound_handle,
    sms_is_opted_out,
    sms_opt_in,
    sms_opt_out,
)


@login_required
@require_GET
def inbox(request: AuthedRequest) -> HttpResponse:
    page = Paginator(in_app_notifications_for(user=request.user).select_related("recipient"), 20).get_page(
        request.GET.get("page")
    )
    rows = [(n, notification_render(n, language=request.user.language)) for n in page.object_list]
    return render(request, "notifications/inbox.html", {"page": page, "rows": rows})


@login_required
@require_POST
def mark_all_read(request: AuthedRequest) -> HttpResponse:
    notifications_mark_read(user=request.user)
    return redirect("notifications:inbox")


@login_required
@require_POST
def open_notification(request: AuthedRequest, notification_id: int) -> HttpResponse:
    notification = in_app_notifications_for(user=request.user).filter(pk=notification_id).first()
    if notification is None:
        raise Http404
    notifications_mark_read(user=request.user, notification_ids=[notification.pk])
    link = str(notification.context.get("link", ""))
    if link and url_has_allowed_host_and_scheme(link, allowed_hosts={request.get_host()}):
        return redirect(link)
    return redirect("notifications:inbox")


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request: AuthedRequest) -> HttpResponse:
    user = request.user
    hours = QuietHours.objects.filter(user=user).first()
    initial: dict[str, object] = {
        "quiet_start": hours.start if hours else QuietHours._meta.get_field("start").default,
        "quiet_end": hours.end if hours else QuietHours._meta.get_field("end").default,
        "sms_opt_out": bool(user.phone) and sms_is_opted_out(phone=user.phone or ""),
    }
    for category in Category.values:
        initial[f"category_{category}"] = sorted(preferred_channels(user=user, category=category))
    form = PreferencesForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            notification_preferences_update(
                user=user,
                channels_by_category=form.channels_by_category(),
                quiet_start=form.cleaned_data["quiet_start"],
                quiet_end=form.cleaned_data["quiet_end"],
            )
            if user.phone and form.cleaned_data["sms_opt_out"]:
                sms_opt_out(phone=user.phone, source=SmsOptOutSource.USER)
            elif user.phone:
                sms_opt_in(phone=user.phone)
        messages.success(request, _("Your notification settings are saved."))
        return redirect("notifications:preferences")
    return render(request, "notifications/preferences.html", {"form": form})


def outbox_enabled() -> bool:
    return not settings.PRODUCTION and (
        settings.SMS_BACKEND.endswith("ConsoleSmsBackend")
        or settings.EMAIL_BACKEND.endswith("ConsoleOutboxEmailBackend")
    )


@require_GET
def outbox(request: HttpRequest) -> HttpResponse:
    """Embedded mode only: the messages the console backends 'sent', so that
    a newcomer trying Telemed can read a sign-in code."""
    if not outbox_enabled():
        raise Http404
    return render(request, "notifications/outbox.html", {"messages_sent": OutboxMessage.objects.all()[:50]})


@csrf_exempt
@require_POST
def sms_inbound(request: HttpRequest) -> HttpResponse:
    """The SMS gateway forwards replies here: JSON {"from", "text"} with the
    gateway's bearer key. STOP and friends opt the number out."""
    expected = f"Bearer {settings.SMS_HTTP_API_KEY}" if settings.SMS_HTTP_API_KEY else ""
    if not expected or not constant_time_compare(request.headers.get("Authorization", ""), expected):
        raise Http404
    try:
        payload = json.loads(request.body or b"{}")
        phone = phone_normalize(str(payload["from"]))
        text = str(payload["text"])
    except (ValueError, KeyError, TypeError, AttributeError, ValidationError):
        return JsonResponse({"error": "expected JSON with a valid 'from' number and 'text'"}, status=400)
    return JsonResponse({"result": sms_inbound_handle(phone=phone, text=text)})


@role_required(UserRole.CLINIC_ADMIN)
@require_GET
def clinic_delivery(request: AuthedRequest, clinic_id: int) -> HttpResponse:
    clinic = clinic_get_for_admin(user=request.user, clinic_id=clinic_id)
    form = DeliveryFilterForm(request.GET or None)
    status = form.cleaned_data["status"] if form.is_valid() else None
    page = Paginator(clinic_notifications(clinic=clinic, status=status), 50).get_page(request.GET.get("page"))
    return render(request, "notifications/clinic_delivery.html", {"clinic": clinic, "form": form, "page": page})


@role_required(UserRole.CLINIC_ADMIN)
@require_POST
def clinic_retry(request: AuthedRequest, clinic_id: int, notification_id: int) -> HttpResponse:
    clinic = clinic_get_for_admin(user=request.user, clinic_id=clinic_id)
    notification = clinic_notification_get(clinic=clinic, notification_id=notification_id)
    if notification.status != Status.DEAD or not notification_retry(notification=notification):
        messages.error(request, _("Only notifications that were not delivered can be sent again."))
    else:
        messages.success(request, _("The notification will be sent again."))
    return redirect("notifications:clinic_delivery", clinic_id=clinic.pk)
