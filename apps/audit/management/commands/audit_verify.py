from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.audit.models import AuditEvent
from apps.audit.selectors import audit_chain_verify


class Command(BaseCommand):
    help = "Check the audit log's hash chain; exits non-zero if any event was changed or deleted."

    def handle(self, *args: Any, **options: Any) -> None:
        breaks = list(audit_chain_verify())
        total = AuditEvent.objects.count()
        if breaks:
            for item in breaks:
                self.stderr.write(f"event {item.event_id}: {item.problem}")
            raise CommandError(f"audit log is NOT intact: {len(breaks)} problem(s) in {total} events")
        self.stdout.write(self.style.SUCCESS(f"audit log intact: {total} events verified"))
