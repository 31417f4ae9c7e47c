"""What patients and doctors are told when an appointment is booked, moved
or cancelled, and the reminders before it: all through the notification
outbox, written in the caller's transaction."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.urls import reverse
from django.utils import timezone, translation

from apps.notifications.models import Category, Channel
from apps.notifications.services import OutgoingMessage, notifications_send_many, notifications_withdraw
from apps.scheduling.ics import appointment_ics
from apps.scheduling.models import DEFAULT_REMINDER_OFFSETS_MINUTES, Appointment, BookingPolicy
from apps.scheduling.selectors import clinic_policy


def _context(appointment: Appointment) -> dict[str, Any]:
    return {
        "doctor": appointment.doctor.full_name,
        "patient": appointment.patient.full_name,
        "clinic": appointment.clinic.name,
        "starts_at": appointment.starts_at.isoformat(),
        "ends_at": appointment.ends_at.isoformat(),
        "mode": appointment.mode,
        "cancel_reason": appointment.cancel_reason,
        # Short, for SMS: /a/<id>/ leads (after signing in) to the appointment.
        "link": reverse("appointment_short", args=[appointment.pk]),
        "book_link": reverse("scheduling:find"),
    }


def _ics_attachment(appointment: Appointment, *, cancelled: bool = False) -> dict[str, str]:
    with translation.override(appointment.patient.language):
        content = appointment_ics(appointment, cancelled=cancelled)
    return {"filename": "telemed-appointment.ics", "content": content, "mimetype": "text/calendar"}


def _reminder_key_prefix(appointment: Appointment) -> str:
    return f"appointment-reminder:{appointment.pk}:"


def _reminders(appointment: Appointment, policy: BookingPolicy, context: dict[str, Any]) -> list[OutgoingMessage]:
    offsets = policy.reminder_offsets_minutes or DEFAULT_REMINDER_OFFSETS_MINUTES
    patient = appointment.patient
    # One channel that reaches the patient outside the app, plus the app.
    channels = [Channel.SMS if patient.phone else Channel.EMAIL, Channel.IN_APP]
    now = timezone.now()
    return [
        OutgoingMessage(
            recipient=patient,
            category=Category.APPOINTMENT,
            template="appointment/reminder",
            context=context,
            idempotency_key=f"{_reminder_key_prefix(appointment)}{minutes}",
            clinic_id=appointment.clinic_id,
            channels=channels,
            not_before=send_at,
        )
        for minutes in offsets
        # A reminder the booking comes too late for would mean nothing.
        if (send_at := appointment.starts_at - timedelta(minutes=minutes)) > now
    ]


# A change the patient makes is confirmed at once, whatever the hour (they
# are awake: they just acted), and so is any change close to the time, which
# they must know before they set out; other news waits for their quiet hours
# to end.
URGENT_WITHIN = timedelta(hours=12)


def _to_patient(
    appointment: Appointment, template: str, context: dict[str, Any], *, by_id: int | None, cancelled: bool = False
) -> OutgoingMessage:
    urgent = by_id == appointment.patient_id or appointment.starts_at - timezone.now() < URGENT_WITHIN
    return OutgoingMessage(
        recipient=appointment.patient,
        category=Category.APPOINTMENT,
        template=template,
        context=context,
        idempotency_key=f"{template}:{appointment.pk}",
        clinic_id=appointment.clinic_id,
        urgent=urgent,
        attachments=[_ics_attachment(appointment, cancelled=cancelled)],
    )


def _to_doctor(appointment: Appointment, template: str, context: dict[str, Any]) -> OutgoingMessage:
    return OutgoingMessage(
        recipient=appointment.doctor,
        category=Category.APPOINTMENT,
        template=template,
        context=context,
        idempotency_key=f"{template}:{appointment.pk}",
        clinic_id=appointment.clinic_id,
        channels=[Channel.IN_APP],
    )


def notify_booked(appointment: Appointment, *, policy: BookingPolicy | None = None) -> None:
    """The patient's confirmation, the doctor's notice and the reminders, in
    one batch. ``policy``: the clinic's booking policy, if the caller has it."""
    context = _context(appointment)
    notifications_send_many(
        messages=[
            _to_patient(appointment, "appointment/booked", context, by_id=appointment.booked_by_id),
            _to_doctor(appointment, "appointment/booked_doctor", context),
            *_reminders(appointment, policy or clinic_policy(clinic=appointment.clinic), context),
        ]
    )


def notify_rescheduled(old: Appointment, new: Appointment, *, policy: BookingPolicy | None = None) -> None:
    notifications_withdraw(idempotency_key_prefix=_reminder_key_prefix(old))
    context = _context(new)
    notifications_send_many(
        messages=[
            _to_patient(new, "appointment/rescheduled", context, by_id=new.booked_by_id),
            _to_doctor(new, "appointment/booked_doctor", context),
            *_reminders(new, policy or clinic_policy(clinic=new.clinic), context),
        ]
    )


def notify_cancelled(appointment: Appointment) -> None:
    notifications_withdraw(idempotency_key_prefix=_reminder_key_prefix(appointment))
    context = _context(appointment)
    notifications_send_many(
        messages=[
            _to_patient(
                appointment, "appointment/cancelled", context, by_id=appointment.cancelled_by_id, cancelled=True
            ),
            _to_doctor(appointment, "appointment/cancelled_doctor", context),
        ]
    )
