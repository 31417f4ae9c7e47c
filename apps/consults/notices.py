"""What the patient is told when the doctor starts the consult ("the doctor
is ready"): in the app always, and by SMS when they are not in the room to
see it. Through the notification outbox, written in the caller's
transaction (delivered once it commits, in the patient's language)."""

from __future__ import annotations

from django.urls import reverse

from apps.consults.models import Consult
from apps.notifications.models import Category, Channel
from apps.notifications.services import notification_send, notifications_withdraw, preferred_channels

READY_TEMPLATE = "consult/ready"


def _ready_key_prefix(appointment_id: int) -> str:
    return f"{READY_TEMPLATE}:{appointment_id}:"


def notify_doctor_ready(*, consult: Consult, patient_present: bool) -> None:
    """Tell the patient the doctor has started their consult. One notice per
    consult, however often this is asked (its idempotency key); the SMS only
    when ``patient_present`` is false, and only the channels the patient
    wants for consult news. Urgent: it matters now or never."""
    appointment = consult.appointment
    patient = appointment.patient
    wanted = {Channel.IN_APP} if patient_present else {Channel.IN_APP, Channel.SMS}
    channels = wanted & preferred_channels(user=patient, category=Category.CONSULT)
    if not channels:
        return
    notification_send(
        recipient=patient,
        category=Category.CONSULT,
        template=READY_TEMPLATE,
        context={
            "doctor": appointment.doctor.full_name,
            "starts_at": appointment.starts_at.isoformat(),
            # Short, for SMS: straight to the room (signing in comes first).
            "link": reverse("consults:room", args=[appointment.pk]),
        },
        idempotency_key=f"{_ready_key_prefix(appointment.pk)}patient",
        urgent=True,
        clinic_id=appointment.clinic_id,
        channels=sorted(channels),
    )


def withdraw_doctor_ready(*, consult: Consult) -> int:
    """The consult has ended: a "doctor is ready" still waiting to go out (a
    retry after a gateway error) is no longer true."""
    return notifications_withdraw(idempotency_key_prefix=_ready_key_prefix(consult.appointment_id))
