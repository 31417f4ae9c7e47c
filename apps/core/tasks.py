from celery import shared_task
from django.core.management import call_command


@shared_task
def sessions_clear_task() -> None:
    """Remove expired sessions (the periodic beat runs this hourly)."""
    call_command("clearsessions")
