"""Slot search: how long the patient's "find a doctor" page takes to answer
with 10 and then 30 doctors over 14 days, and how many queries it makes.

Set-up, not timed: a fresh PostgreSQL database (``telemed_bench_<pid>``,
migrated, dropped afterwards), a fresh TELEMED_VAR_DIR with collected static
files. The measuring runs in a child process with Django set up against that
database (``python -m bench.scheduling_child slots``): it seeds a network of
five clinics (one in another time zone) and 10 doctors with weekly hours, a
share of their slots booked, past appointments and time off; counts the
page's queries and times it; adds 20 doctors and does it again; then times
one doctor's week page and the API's slots endpoint.

Server time is measured in-process through ``django.test.Client``: the whole
middleware stack, the view, its queries and the template, with no network and
no ASGI server. Without PostgreSQL the benchmark is skipped.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from bench.notifications import POSTGRES_URL, _redacted, bench_database
from bench.server import LOG_TAIL_CHARS, PROJECT_DIR, embedded_environment, manage_py_run, outcome_measure

SERVICE_TIMEOUT_S = 3
MEASURE_TIMEOUT_S = 900


def utc_now_text() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class SlotsPlan:
    steps: tuple[int, ...]  # doctors in all after each seeding step
    requests: int  # timed requests per page and step


FULL_SLOTS = SlotsPlan(steps=(10, 30), requests=200)
SMOKE_SLOTS = SlotsPlan(steps=(2, 6), requests=5)


@dataclass(frozen=True)
class SearchStep:
    doctors: int
    pairs: int  # (doctor, clinic) pairs listed
    appointments: int
    upcoming_appointments: int
    time_off: int
    seed_s: float
    queries: int
    requests: int
    p50_ms: float
    p95_ms: float
    mean_ms: float
    cpu_mean_ms: float  # CPU time of the process per request: what other work on the machine doesn't inflate


@dataclass(frozen=True)
class PageTiming:
    queries: int
    requests: int
    p50_ms: float
    p95_ms: float
    mean_ms: float
    cpu_mean_ms: float  # CPU time of the process per request: what other work on the machine doesn't inflate


@dataclass
class SlotsResult:
    plan: SlotsPlan
    skipped: str | None = None
    error: str | None = None
    measured_at: str = field(default_factory=utc_now_text)
    steps: list[SearchStep] = field(default_factory=list)
    week_page: PageTiming | None = None
    api_slots: PageTiming | None = None
    setup_s: float = math.nan
    load_average: float | None = None  # the machine's, over the minute before the measurement

    @property
    def measured(self) -> bool:
        return self.skipped is None

    @property
    def constant_queries(self) -> bool:
        return len({step.queries for step in self.steps}) == 1

    @property
    def passed(self) -> bool:
        return self.skipped is None and self.error is None and bool(self.steps) and self.constant_queries


def postgres_missing() -> str | None:
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=SERVICE_TIMEOUT_S) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        return f"PostgreSQL is not reachable at {_redacted(POSTGRES_URL)} ({error.__class__.__name__})"
    return None


def slots_run(plan: SlotsPlan) -> SlotsResult:
    """Run the benchmark; a result that says skipped, failed or what it
    measured. Raises only on interruption, after cleaning up."""
    return outcome_measure(
        SlotsResult(plan=plan),
        missing=postgres_missing(),
        needs="PostgreSQL",
        measure=lambda result: _slots_measure(plan, result),
        expected=(psycopg.Error,),
    )


def _slots_measure(plan: SlotsPlan, result: SlotsResult) -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="telemed-bench-slots-") as directory, bench_database() as database_url:
        environment = embedded_environment(var_dir=Path(directory) / "var")
        environment.update(DATABASE_URL=database_url, PYTHONUNBUFFERED="1")
        print(f"  database {database_url.rsplit('/', 1)[-1]}: manage.py migrate, collectstatic", flush=True)
        manage_py_run("migrate", "--noinput", environment=environment)
        manage_py_run("collectstatic", "--noinput", environment=environment)
        result.setup_s = time.monotonic() - started
        result.load_average = os.getloadavg()[0]
        steps = ",".join(str(doctors) for doctors in plan.steps)
        print(f"  seeding {steps} doctors and timing the find page {plan.requests} times at each", flush=True)
        completed = subprocess.run(
            [sys.executable, "-m", "bench.scheduling_child", "slots", steps, str(plan.requests)],
            cwd=PROJECT_DIR,
            env=environment,
            capture_output=True,
            text=True,
            timeout=MEASURE_TIMEOUT_S,
            check=False,
        )
        if completed.returncode != 0:
            output = (completed.stdout + completed.stderr)[-LOG_TAIL_CHARS:]
            raise RuntimeError(f"the slot search measurement failed ({completed.returncode}):\n{output}")
        figures: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    result.steps = [SearchStep(**step) for step in figures["steps"]]
    result.week_page = PageTiming(**figures["week_page"])
    result.api_slots = PageTiming(**figures["api_slots"])
