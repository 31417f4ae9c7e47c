from celery import shared_task

from apps.scheduling.services import appointment_notices_send, appointment_notices_send_late


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def appointment_notices_send_task(appointment_id: int) -> bool:
    """Write a booking's notices; safe to run any number of times."""
    return appointment_notices_send(appointment_id=appointment_id)


@shared_task(ignore_result=True)
def appointment_notices_send_late_task() -> int:
    """Beat's scan for bookings whose notices were not written."""
    return appointment_notices_send_late()
