"""``{% appointment_note_panel appointment %}`` on the appointment page: the
patient reads their doctor's signed plan; the appointment's doctor gets the
way to the note; anyone else sees nothing."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse

from apps.care.models import ConsultNote
from apps.care.selectors_notes import note_plan_for_patient
from apps.clinics.selectors import UserRole, user_roles
from apps.scheduling.models import Appointment, AppointmentStatus

register = template.Library()


@register.inclusion_tag("care/_plan_for_patient.html", takes_context=True)
def appointment_note_panel(context: dict[str, Any], appointment: Appointment) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    if appointment.patient_id == user.pk:
        return {"plan": note_plan_for_patient(user=user, appointment=appointment)}
    if (
        appointment.doctor_id == user.pk
        and appointment.status != AppointmentStatus.CANCELLED
        and UserRole.DOCTOR in user_roles(user=user)
    ):
        status = ConsultNote.objects.filter(appointment=appointment).values_list("status", flat=True).first()
        return {"note_url": reverse("care:note_editor", args=[appointment.pk]), "note_status": status or ""}
    return {}
