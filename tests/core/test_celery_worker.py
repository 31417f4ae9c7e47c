"""A real Celery worker, on Redis, runs our periodic work."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.utils import timezone

from tests.core.test_settings import ROOT
from tests.services import redis_url, require_postgres


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_clears_expired_sessions() -> None:
    require_postgres()  # the worker process must see the test database
    broker = redis_url()
    Session.objects.create(session_key="x" * 32, session_data="", expire_date=timezone.now() - timedelta(days=1))
    Session.objects.create(session_key="y" * 32, session_data="", expire_date=timezone.now() + timedelta(days=1))

    db = settings.DATABASES["default"]
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY"}}
    env["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env["REDIS_URL"] = broker
    queue = f"test-{os.getpid()}-{time.monotonic_ns()}"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "telemed",
            "worker",
            "--pool=solo",
            "-Q",
            queue,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        from apps.core.tasks import sessions_clear_task
        from telemed.celery import app

        with app.connection_for_write(broker) as connection:
            sessions_clear_task.apply_async(queue=queue, connection=connection)
        deadline = time.monotonic() + 60
        while Session.objects.filter(session_key="x" * 32).exists():
            assert time.monotonic() < deadline, "the worker did not run the task"
            assert worker.poll() is None, "the worker died"
            time.sleep(0.3)
        assert Session.objects.filter(session_key="y" * 32).exists()
    finally:
        worker.terminate()
        worker.wait(timeout=20)
