"""Run Telemed in embedded mode: Daphne (HTTP + WebSocket), a Celery worker
and Celery beat, as child processes that Ctrl-C stops together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.core import demo


class Command(BaseCommand):
    help = "Start Daphne, a Celery worker and Celery beat; Ctrl-C stops all three."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = options["host"], options["port"]
        python = sys.executable
        schedule = os.path.join(settings.VAR_DIR, "celery", "beat-schedule")
        commands = {
            "web": [python, "-m", "daphne", "-b", host, "-p", str(port), "telemed.asgi:application"],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "telemed",
                "worker",
                "--loglevel=INFO",
                "--pool=threads",
                "--concurrency=4",
                "--without-gossip",
                "--without-mingle",
            ],
            "beat": [python, "-m", "celery", "-A", "telemed", "beat", "--loglevel=INFO", "-s", schedule],
        }
        processes: dict[str, subprocess.Popen[bytes]] = {}
        stopping = False

        def stop(*_: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        for name, command in commands.items():
            # Own process group: Ctrl-C reaches us once, and we stop the children in order.
            processes[name] = subprocess.Popen(command, start_new_session=True)  # noqa: S603  # our own fixed commands

        url = f"http://{host}:{port}/"
        self.stdout.write(self.style.SUCCESS(f"\nTelemed is running at {url}  (Ctrl-C stops everything)\n"))
        self.stdout.write(f"Demo logins (password for all: {demo.DEMO_PASSWORD}):")
        for doctor in demo.DOCTORS:
            self.stdout.write(f"  doctor        {doctor[0]:32} {doctor[1]}")
        for admin in demo.CLINIC_ADMINS:
            self.stdout.write(f"  clinic admin  {admin[0]:32} {admin[1]}")
        self.stdout.write(f"  site admin    {demo.SITE_ADMIN[0]:32} {demo.SITE_ADMIN[1]}")
        for email, phone, name, *_details in demo.PATIENTS:
            self.stdout.write(
                f"  patient       {(email or phone or ''):32} {name}{'' if email else '  (SMS code: printed here)'}"
            )
        self.stdout.write("Staff two-factor code: .venv/bin/python manage.py demo_totp EMAIL\n")

        try:
            while not stopping:
                for name, process in processes.items():
                    if process.poll() is not None:
                        self.stderr.write(f"{name} exited with code {process.returncode}; stopping the others")
                        stopping = True
                time.sleep(0.5)
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.terminate()
            deadline = time.monotonic() + 10
            for process in processes.values():
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            self.stdout.write("stopped")
