from celery import shared_task

from apps.notifications.services import notification_deliver, notifications_enqueue_due


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def notification_deliver_task(notification_id: int) -> str:
    """Deliver one notification; safe to run any number of times."""
    return notification_deliver(notification_id=notification_id)


@shared_task(ignore_result=True)
def notifications_enqueue_due_task() -> int:
    """Beat's scan for waiting, retrying and abandoned notifications."""
    return notifications_enqueue_due()
