"""The notification benchmark's steps that run inside Telemed (Django set up
against the benchmark's own database and Redis), as subprocesses of
``bench.notifications``, never in the bench process itself:

``python -m bench.notifications_child seed COUNT``
    bulk-creates COUNT patients, each with a phone number, and one due SMS
    notification per patient (pending, never enqueued), then ANALYZEs;
    prints one JSON line.

``python -m bench.notifications_child scan INTERVAL``
    sets Django up, prints ``ready``, waits for a line on stdin, then runs
    beat's scan (``notifications_enqueue_due``) every INTERVAL seconds until
    it is killed or its stdin closes, printing one JSON line per scan.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

SEED_BATCH_SIZE = 1000
PHONE_PREFIX = "+86138"  # China Mobile: +86 138 and 8 digits
IDEMPOTENCY_PREFIX = "bench-welcome-"
TEMPLATE = "account/welcome"


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "telemed.settings")
    import django

    django.setup()


def seed(count: int) -> None:
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction
    from django.utils import timezone

    from apps.accounts.models import Language, PatientProfile, User
    from apps.notifications.models import Category, Channel, Notification, Status

    started = time.monotonic()
    now = timezone.now()
    unusable_password = make_password(None)
    users = [
        User(
            phone=f"{PHONE_PREFIX}{index:08d}",
            full_name=f"Bench patient {index}",
            language=Language.EN,
            password=unusable_password,
        )
        for index in range(count)
    ]
    with transaction.atomic():
        User.objects.bulk_create(users, batch_size=SEED_BATCH_SIZE)
        PatientProfile.objects.bulk_create([PatientProfile(user=user) for user in users], batch_size=SEED_BATCH_SIZE)
        Notification.objects.bulk_create(
            [
                Notification(
                    recipient=user,
                    category=Category.ACCOUNT,
                    channel=Channel.SMS,
                    template=TEMPLATE,
                    context={},
                    language=Language.EN,
                    idempotency_key=f"{IDEMPOTENCY_PREFIX}{user.pk}",
                    status=Status.PENDING,
                    due_at=now,
                    enqueued_at=None,
                )
                for user in users
            ],
            batch_size=SEED_BATCH_SIZE,
        )
    with connection.cursor() as cursor:
        # A production table has statistics (autovacuum); a fresh one has none yet.
        cursor.execute("ANALYZE")
    due = Notification.objects.filter(status=Status.PENDING, channel=Channel.SMS, due_at__lte=timezone.now()).count()
    print(json.dumps({"users": len(users), "due": due, "seconds": round(time.monotonic() - started, 3)}), flush=True)


def scan(interval_s: float) -> None:
    from django.db import connection

    from apps.notifications.services import notifications_enqueue_due

    connection.ensure_connection()
    print("ready", flush=True)
    # The go signal: the parent starts its clock, then writes a line. End of
    # input (the parent is gone) ends the scanner, before or after it.
    if not sys.stdin.readline():
        return
    threading.Thread(target=_exit_at_end_of_input, daemon=True).start()
    while True:
        started = time.time()
        enqueued = notifications_enqueue_due()
        finished = time.time()
        print(json.dumps({"at": started, "seconds": round(finished - started, 4), "enqueued": enqueued}), flush=True)
        time.sleep(max(0.0, interval_s - (finished - started)))


def _exit_at_end_of_input() -> None:
    while sys.stdin.readline():
        pass
    os._exit(0)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in {"seed", "scan"}:
        print(__doc__, file=sys.stderr)
        return 2
    django_setup()
    if argv[0] == "seed":
        seed(int(argv[1]))
    else:
        scan(float(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
