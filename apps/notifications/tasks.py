from celery import shared_task

from apps.notifications.services import notification_deliver, notifications_enqueue_due


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def notification_deliver_task(notification_id: int) -> str:
    """Deliver one notification; safe to run any number of times."""
    return notification_deliver(notification_id=notification_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def notifications_deliver_task(notification_ids: list[int]) -> list[str]:
    """Deliver the notifications one piece of work wrote (a booking's
    confirmations), one after the other; safe to run any number of times:
    each is claimed on its own, so a second run skips those sent."""
    return [notification_deliver(notification_id=notification_id) for notification_id in notification_ids]


@shared_task(ignore_result=True)
def notifications_enqueue_due_task() -> int:
    """Beat's scan for waiting, retrying and abandoned notifications."""
    return notifications_enqueue_due()
