"""Referrals follow the appointments booked for them.

Appointments are booked in several places that the scheduling app owns
(the patient's booking page, the API, the clinic's staff, rescheduling);
one receiver here keeps referrals in step with all of them, in the booking's
own transaction, without scheduling knowing about referrals."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from apps.scheduling.models import Appointment


@receiver(post_save, sender=Appointment, dispatch_uid="telemed_care_referrals_follow_booking")
def on_appointment_saved(sender: Any, instance: Appointment, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if raw:  # loaddata
        return
    from apps.care.services import referrals_follow_booking

    referrals_follow_booking(appointment=instance, created=created)
