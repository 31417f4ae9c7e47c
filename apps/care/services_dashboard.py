"""What a doctor does from the dashboard besides acknowledging an alert
(``apps.vitals.services.alert_acknowledge``): send a patient a short
message, in the app and by SMS, audited."""

from __future__ import annotations

from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from apps.accounts.models import User
from apps.accounts.selectors import patient_can_be_seen_by_doctor
from apps.audit.models import AuditAction
from apps.audit.services import audit_access_denied, audit_record
from apps.notifications.models import Category, Channel
from apps.notifications.services import notification_send

# Short enough that the SMS (with its header) fits two segments in Chinese.
MESSAGE_MAX_CHARS = 100
MESSAGE_TEMPLATE = "care/doctor_message"


class MessageRefused(Exception):
    """Nothing was sent. ``code``: not_found (no access), invalid (``message`` says why)."""

    def __init__(self, code: str, message: str = "") -> None:
        self.code = code
        self.message = message
        super().__init__(code)


def patient_message_send(*, doctor: User, patient: User, text: str, token: str) -> None:
    """A doctor who sees ``patient``'s record sends them a short message, in
    the app and by SMS. ``token`` (one per form) makes a resent form send
    nothing new. The message is audited (not its text: the audit log keeps
    no health data of its own)."""
    if not patient_can_be_seen_by_doctor(user=doctor, patient=patient):
        audit_access_denied(actor=doctor, object_type="patient_message", object_id=patient.pk)
        raise MessageRefused("not_found")
    text = " ".join(text.split())
    if not text:
        raise MessageRefused("invalid", _("Write a message."))
    if len(text) > MESSAGE_MAX_CHARS:
        raise MessageRefused(
            "invalid", _("Keep the message under %(count)d characters.") % {"count": MESSAGE_MAX_CHARS}
        )
    token = "".join(ch for ch in token if ch.isalnum())[:64]
    if not token:
        raise MessageRefused("invalid", _("The form expired. Please send it again."))
    with transaction.atomic():
        notification_send(
            recipient=patient,
            category=Category.CONSULT,
            template=MESSAGE_TEMPLATE,
            context={"doctor": doctor.full_name, "text": text, "link": reverse("scheduling:mine")},
            idempotency_key=f"care-message:{doctor.pk}:{patient.pk}:{token}",
            channels=[Channel.IN_APP, Channel.SMS],
            sensitive=True,
        )
        audit_record(action=AuditAction.CREATE, actor=doctor, object_type="patient_message", patient=patient)
