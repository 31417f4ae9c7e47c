"""Booking under contention: concurrent API clients book random slots through
one Daphne process on PostgreSQL and Redis, beside two bare endpoints of the
same server that insert one row each (``bench.urls``).

Set-up, not timed: a fresh PostgreSQL database (``telemed_bench_<pid>``,
migrated, dropped afterwards), the dedicated Redis database (flushed before
and after), a fresh TELEMED_VAR_DIR; ``python -m bench.scheduling_child
booking-seed`` seeds five clinics and their doctors (weekly hours, a share of
the slots already booked), each client's own patients (consent given, one
personal access token each) and the bare-insert table, and lists every free
slot of the next 14 days from tomorrow. Then one Daphne process starts with
``bench.settings``: the product's settings (``DATABASE_URL``, ``REDIS_URL``,
no ``SECRET_KEY``) and URLs plus the bare endpoints.

Timed, three times (after a warm-up each): every client, on its own
keep-alive connection, sends requests one after the other for the duration:
first ``POST /api/v1/appointments/`` for a slot drawn at random from the list
(a stale view of the schedule: slots others took answer 409) by its next
patient in turn; then ``POST /bench/api/insert/`` by the same patients in
turn (the API's token authentication, throttle and serializer around one
insert: the fair baseline of the booking's own work); then
``POST /bench/insert/`` (a plain Django view around one insert). A request
counts when it completes inside the measured window.

Afterwards, by SQL: active appointments that overlap another of the same
doctor or of the same patient (double bookings; there must be none), and
rows against 201 answers. Without PostgreSQL or Redis the benchmark is
skipped.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.http_load import percentile_ms
from bench.notifications import (
    bench_database,
    bench_redis,
    cpu_seconds_outside,
    group_cpu_cores,
    machine_busy_ticks,
    services_cpu_seconds,
    services_missing,
)
from bench.server import (
    LOG_TAIL_CHARS,
    PROJECT_DIR,
    daphne_process,
    embedded_environment,
    manage_py_run,
    outcome_measure,
    process_cpu_seconds,
)
from bench.slots import utc_now_text

BOOK_PATH = "/api/v1/appointments/"
BARE_PATH = "/bench/insert/"
BARE_API_PATH = "/bench/api/insert/"
REQUEST_TIMEOUT_S = 30.0
SEED_TIMEOUT_S = 600
HOLDING_STATUSES = ("booked", "completed", "no_show")


@dataclass(frozen=True)
class BookingPlan:
    clients: int
    warmup_s: float
    duration_s: float
    doctors: int
    patients_per_client: int


FULL_BOOKING = BookingPlan(clients=32, warmup_s=3.0, duration_s=30.0, doctors=30, patients_per_client=16)
SMOKE_BOOKING = BookingPlan(clients=8, warmup_s=0.5, duration_s=2.0, doctors=4, patients_per_client=2)


@dataclass(frozen=True)
class PhaseResult:
    label: str
    path: str
    clients: int
    duration_s: float
    # Answers in the measured window: "201", "409 slot_taken", "HTTP 400", "ReadTimeout"…
    outcomes: dict[str, int]
    p50_ms: float
    p95_ms: float
    created_p95_ms: float
    # 201 answers over the whole phase, warm-up and the requests still in flight at the end included.
    created_in_all: int
    server_cpu_cores: float | None
    generator_cpu_cores: float | None
    services_cpu_cores: float | None
    # The whole machine, and processes that are neither the benchmark's nor
    # PostgreSQL or Redis (others' work on a shared machine slows the run).
    machine_busy_cores: float | None = None
    others_cpu_cores: float | None = None

    @property
    def requests(self) -> int:
        return sum(self.outcomes.values())

    @property
    def created(self) -> int:
        return self.outcomes.get("201", 0)

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else math.nan

    @property
    def created_per_s(self) -> float:
        return self.created / self.duration_s if self.duration_s > 0 else math.nan

    @property
    def server_cpu_ms_per_request(self) -> float:
        """Daphne's CPU time per answered request: less sensitive than the rates to other work on the machine."""
        if self.server_cpu_cores is None or not self.requests:
            return math.nan
        return 1000 * self.server_cpu_cores * self.duration_s / self.requests

    @property
    def unexpected(self) -> int:
        """Answers other than 201 and 409 (a 409 is a slot or a patient already taken)."""
        return sum(
            count for outcome, count in self.outcomes.items() if outcome != "201" and not outcome.startswith("409")
        )


@dataclass
class BookingResult:
    plan: BookingPlan
    skipped: str | None = None
    error: str | None = None
    measured_at: str = field(default_factory=utc_now_text)
    pairs: int = 0
    slot_pool: int = 0
    setup_s: float = math.nan
    booking: PhaseResult | None = None
    # The same API stack as the booking (token, throttle, serializer) around one insert.
    bare_api: PhaseResult | None = None
    # A plain Django view around one insert.
    bare: PhaseResult | None = None
    appointments_created: int | None = None
    bare_api_rows: int | None = None
    bare_rows: int | None = None
    doctor_overlaps: int | None = None
    patient_overlaps: int | None = None
    load_average: float | None = None  # the machine's, over the minute before the booking phase

    @property
    def measured(self) -> bool:
        return self.skipped is None

    @property
    def ratio(self) -> float:
        """Booking requests answered per second over bare API inserts per second."""
        return _rate_ratio(self.booking, self.bare_api, created=False)

    @property
    def created_ratio(self) -> float:
        """Bookings made (201) per second over bare API inserts per second."""
        return _rate_ratio(self.booking, self.bare_api, created=True)

    @property
    def plain_ratio(self) -> float:
        """Booking requests answered per second over plain-view inserts per second."""
        return _rate_ratio(self.booking, self.bare, created=False)

    @property
    def plain_created_ratio(self) -> float:
        return _rate_ratio(self.booking, self.bare, created=True)

    @property
    def phases(self) -> list[PhaseResult]:
        return [phase for phase in (self.booking, self.bare_api, self.bare) if phase is not None]

    @property
    def passed(self) -> bool:
        """Measured, no double booking, no answer but 201/409, each 201 one row."""
        return (
            self.skipped is None
            and self.error is None
            and self.booking is not None
            and self.bare_api is not None
            and self.bare is not None
            and self.doctor_overlaps == 0
            and self.patient_overlaps == 0
            and all(phase.unexpected == 0 for phase in self.phases)
            and self.appointments_created == self.booking.created_in_all
            and self.bare_api_rows == self.bare_api.created_in_all
            and self.bare_rows == self.bare.created_in_all
        )


def _rate_ratio(numerator: PhaseResult | None, denominator: PhaseResult | None, *, created: bool) -> float:
    if numerator is None or denominator is None:
        return math.nan
    over = denominator.created_per_s if created else denominator.requests_per_s
    if not over:
        return math.nan
    return (numerator.created_per_s if created else numerator.requests_per_s) / over


# --- Load -------------------------------------------------------------------------

# One request: (JSON body, headers).
RequestFactory = Callable[[], tuple[dict[str, Any], dict[str, str]]]


@dataclass
class _Tally:
    samples: list[tuple[float, str]] = field(default_factory=list)
    created_in_all: int = 0


def _outcome(response: httpx.Response) -> str:
    if response.status_code == 201:
        return "201"
    code = ""
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("code"), str):
            code = f" {body['code']}"
    except ValueError:
        pass
    return f"{response.status_code}{code}" if response.status_code == 409 else f"HTTP {response.status_code}{code}"


async def _client_loop(
    *, base_url: str, path: str, next_request: RequestFactory, measure_start: float, measure_end: float, tally: _Tally
) -> None:
    async with httpx.AsyncClient(
        base_url=base_url,
        timeout=REQUEST_TIMEOUT_S,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    ) as client:
        while (started := time.perf_counter()) < measure_end:
            body, headers = next_request()
            try:
                outcome = _outcome(await client.post(path, json=body, headers=headers))
            except httpx.HTTPError as error:
                outcome = type(error).__name__
            finished = time.perf_counter()
            if outcome == "201":
                tally.created_in_all += 1
            if measure_start <= finished <= measure_end:
                tally.samples.append((finished - started, outcome))


def phase_run(
    *,
    label: str,
    base_url: str,
    path: str,
    factories: list[RequestFactory],
    warmup_s: float,
    duration_s: float,
    server_pid: int,
) -> PhaseResult:
    """Every factory is one client, sending its requests one after the other."""
    measure_start = time.perf_counter() + warmup_s
    measure_end = measure_start + duration_s
    marks: dict[str, _CpuMark] = {}
    own_groups = {os.getpgrp(), server_pid}
    tally = _Tally()

    async def run() -> None:
        async def mark(name: str, at: float) -> None:
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            marks[name] = _CpuMark(
                generator=time.process_time(),
                server=process_cpu_seconds(server_pid),
                services=services_cpu_seconds(),
                machine=machine_busy_ticks(),
                others=cpu_seconds_outside(own_groups),
            )

        mark_tasks = [asyncio.create_task(mark("start", measure_start)), asyncio.create_task(mark("end", measure_end))]
        async with asyncio.TaskGroup() as group:
            for factory in factories:
                group.create_task(
                    _client_loop(
                        base_url=base_url,
                        path=path,
                        next_request=factory,
                        measure_start=measure_start,
                        measure_end=measure_end,
                        tally=tally,
                    )
                )
        await asyncio.gather(*mark_tasks)

    asyncio.run(run())
    start, end = marks["start"], marks["end"]
    latencies = [seconds for seconds, _ in tally.samples]
    created = [seconds for seconds, outcome in tally.samples if outcome == "201"]
    return PhaseResult(
        label=label,
        path=path,
        clients=len(factories),
        duration_s=duration_s,
        outcomes=dict(Counter(outcome for _, outcome in tally.samples)),
        p50_ms=percentile_ms(latencies, 50),
        p95_ms=percentile_ms(latencies, 95),
        created_p95_ms=percentile_ms(created, 95),
        created_in_all=tally.created_in_all,
        server_cpu_cores=_cores(start.server, end.server, duration_s),
        generator_cpu_cores=_cores(start.generator, end.generator, duration_s),
        services_cpu_cores=_cores(start.services, end.services, duration_s),
        machine_busy_cores=(
            (end.machine[0] - start.machine[0]) / (os.sysconf("SC_CLK_TCK") * duration_s)
            if start.machine and end.machine
            else None
        ),
        others_cpu_cores=group_cpu_cores(start.others, end.others, duration_s),
    )


@dataclass(frozen=True)
class _CpuMark:
    generator: float
    server: float | None
    services: float
    machine: tuple[int, int] | None
    others: dict[int, float]


def _cores(start: float | None, end: float | None, wall_s: float) -> float | None:
    if start is None or end is None or wall_s <= 0:
        return None
    return (end - start) / wall_s


class BookingClient:
    """One client's requests: a random slot of the list, booked by the
    client's next patient in turn."""

    def __init__(self, *, index: int, tokens: list[str], slots: list[list[Any]]) -> None:
        self.tokens = tokens
        self.slots = slots
        self.generator = random.Random(index)  # reproducible draws, not security
        self.turn = 0

    def __call__(self) -> tuple[dict[str, Any], dict[str, str]]:
        doctor, clinic, starts_at, modes = self.slots[self.generator.randrange(len(self.slots))]
        token = self.tokens[self.turn % len(self.tokens)]
        self.turn += 1
        body = {"doctor": doctor, "clinic": clinic, "starts_at": starts_at, "mode": self.generator.choice(modes)}
        return body, {"Authorization": f"Bearer {token}"}


class BareClient:
    def __init__(self, index: int) -> None:
        self.index = index

    def __call__(self) -> tuple[dict[str, Any], dict[str, str]]:
        return {"client": self.index}, {}


class BareApiClient:
    """One row per request, by the client's next patient in turn (the same
    tokens as the booking, so the same authentication and throttle)."""

    def __init__(self, *, index: int, tokens: list[str]) -> None:
        self.index = index
        self.tokens = tokens
        self.turn = 0

    def __call__(self) -> tuple[dict[str, Any], dict[str, str]]:
        token = self.tokens[self.turn % len(self.tokens)]
        self.turn += 1
        return {"client": self.index}, {"Authorization": f"Bearer {token}"}


def booking_factories(*, tokens: list[list[str]], slots: list[list[Any]]) -> list[RequestFactory]:
    return [BookingClient(index=index, tokens=own, slots=slots) for index, own in enumerate(tokens)]


def bare_factories(clients: int) -> list[RequestFactory]:
    return [BareClient(index) for index in range(clients)]


def bare_api_factories(*, tokens: list[list[str]]) -> list[RequestFactory]:
    return [BareApiClient(index=index, tokens=own) for index, own in enumerate(tokens)]


# --- The run ----------------------------------------------------------------------


def _count(connection: psycopg.Connection[Any], query: str, *parameters: Any) -> int:
    row = connection.execute(query, parameters).fetchone()
    return int(row[0]) if row else 0


OVERLAPS_SQL = """
SELECT count(*) FROM scheduling_appointment a
JOIN scheduling_appointment b ON b.{column} = a.{column} AND b.id > a.id
WHERE a.status = ANY(%s) AND b.status = ANY(%s) AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at
"""


def overlaps(connection: psycopg.Connection[Any], column: str) -> int:
    """Pairs of active appointments of one doctor (or patient) that overlap."""
    return _count(connection, OVERLAPS_SQL.format(column=column), list(HOLDING_STATUSES), list(HOLDING_STATUSES))


def booking_run(plan: BookingPlan) -> BookingResult:
    """Run the benchmark; a result that says skipped, failed or what it
    measured. Raises only on interruption, after cleaning up."""
    return outcome_measure(
        BookingResult(plan=plan),
        missing=services_missing(),
        needs="PostgreSQL and Redis",
        measure=lambda result: _booking_measure(plan, result),
        expected=(psycopg.Error,),
    )


def _seed(plan: BookingPlan, environment: dict[str, str], directory: Path) -> dict[str, Any]:
    seed_path = directory / "seed.json"
    command = [
        sys.executable,
        "-m",
        "bench.scheduling_child",
        "booking-seed",
        str(plan.doctors),
        str(plan.clients),
        str(plan.patients_per_client),
        str(seed_path),
    ]
    completed = subprocess.run(
        command, cwd=PROJECT_DIR, env=environment, capture_output=True, text=True, timeout=SEED_TIMEOUT_S, check=False
    )
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr)[-LOG_TAIL_CHARS:]
        raise RuntimeError(f"seeding failed ({completed.returncode}):\n{output}")
    seeded: dict[str, Any] = json.loads(seed_path.read_text(encoding="utf-8"))
    seeded.update(json.loads(completed.stdout.strip().splitlines()[-1]))
    return seeded


def _booking_measure(plan: BookingPlan, result: BookingResult) -> None:
    started = time.monotonic()
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="telemed-bench-booking-")))
        database_url = stack.enter_context(bench_database())
        redis_url = stack.enter_context(bench_redis())
        environment = embedded_environment(var_dir=directory / "var")
        environment.update(
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            DJANGO_SETTINGS_MODULE="bench.settings",
            PYTHONUNBUFFERED="1",
        )
        print(f"  database {database_url.rsplit('/', 1)[-1]}: manage.py migrate", flush=True)
        manage_py_run("migrate", "--noinput", environment=environment)
        print(
            f"  seeding {plan.doctors} doctors and {plan.clients * plan.patients_per_client} patients with tokens",
            flush=True,
        )
        seeded = _seed(plan, environment, directory)
        result.pairs, result.slot_pool = int(seeded["pairs"]), int(seeded["free_slots"])
        if result.slot_pool == 0:
            raise RuntimeError("the seed left no free slot to book")
        server = stack.enter_context(daphne_process(environment=environment, log_path=directory / "daphne.log"))
        result.setup_s = time.monotonic() - started
        with psycopg.connect(database_url, autocommit=True) as connection:
            before = _count(connection, "SELECT count(*) FROM scheduling_appointment")
            result.load_average = os.getloadavg()[0]
            print(
                f"  {plan.clients} clients book random slots of {result.slot_pool:,} for {plan.duration_s:g} s "
                f"(after {plan.warmup_s:g} s of warm-up) on {server.base_url}",
                flush=True,
            )
            result.booking = phase_run(
                label="booking",
                base_url=server.base_url,
                path=BOOK_PATH,
                factories=booking_factories(tokens=seeded["tokens"], slots=seeded["slots"]),
                warmup_s=plan.warmup_s,
                duration_s=plan.duration_s,
                server_pid=server.pid,
            )
            result.appointments_created = _count(connection, "SELECT count(*) FROM scheduling_appointment") - before
            print(
                f"  the same clients insert one row each request through the API's stack for {plan.duration_s:g} s",
                flush=True,
            )
            result.bare_api = phase_run(
                label="bare API insert",
                base_url=server.base_url,
                path=BARE_API_PATH,
                factories=bare_api_factories(tokens=seeded["tokens"]),
                warmup_s=plan.warmup_s,
                duration_s=plan.duration_s,
                server_pid=server.pid,
            )
            result.bare_api_rows = _count(connection, "SELECT count(*) FROM bench_insert")
            print(
                f"  the same clients insert one row each request by a plain view for {plan.duration_s:g} s", flush=True
            )
            result.bare = phase_run(
                label="bare insert",
                base_url=server.base_url,
                path=BARE_PATH,
                factories=bare_factories(plan.clients),
                warmup_s=plan.warmup_s,
                duration_s=plan.duration_s,
                server_pid=server.pid,
            )
            result.bare_rows = _count(connection, "SELECT count(*) FROM bench_insert") - result.bare_api_rows
            result.doctor_overlaps = overlaps(connection, "doctor_id")
            result.patient_overlaps = overlaps(connection, "patient_id")
        print("  stopping Daphne, dropping the database", flush=True)
