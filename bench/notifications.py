"""Notification delivery: N due SMS notifications delivered by two real Celery
workers through the local SMS gateway stand-in, on PostgreSQL and Redis.

Set-up, not timed: a fresh PostgreSQL database (``telemed_bench_<pid>``,
migrated), a dedicated Redis database (flushed), a fresh TELEMED_VAR_DIR,
the gateway (``tests.notifications.servers.SmsGateway``) in this process,
N patients with one due, never-enqueued SMS notification each (bulk-created
by ``bench.notifications_child seed``), two ``celery worker`` processes
(prefork, one child each) waiting for tasks, and the scanner process
(``bench.notifications_child scan``) waiting for the go signal.

Timed: the scanner runs beat's scan, ``notifications_enqueue_due`` (up to
2,000 rows per call), every second; the workers deliver. The clock starts
when the scanner is told to go and stops at the last row's ``sent_at``; the
rows are counted by SQL every half second until all are sent (or nothing more
can change, or the time limit passes).

Afterwards the workers, the scanner and the gateway are stopped, the database
dropped, the Redis database flushed and the temporary directory removed,
whatever happened. Without PostgreSQL or Redis on 127.0.0.1 the benchmark is
skipped (``DeliveryResult.skipped`` says why).
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
from psycopg import sql

from bench.server import (
    LOG_TAIL_CHARS,
    PROJECT_DIR,
    embedded_environment,
    manage_py_run,
    outcome_measure,
    process_cpu_seconds,
    server_stop,
)

if TYPE_CHECKING:
    from tests.notifications.servers import SmsGateway

# Where the real services are; override with these variables (the app's own
# DATABASE_URL / REDIS_URL are never read: the run gets a database of its own).
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")

FULL_COUNT = 10_000
SMOKE_COUNT = 200
WORKER_COUNT = 2
SCAN_INTERVAL_S = 1.0
POLL_INTERVAL_S = 0.5
PROGRESS_EVERY_S = 10.0
FULL_TIMEOUT_S = 600.0
SMOKE_TIMEOUT_S = 120.0
SEED_TIMEOUT_S = 300.0
WORKER_START_TIMEOUT_S = 60.0
SCANNER_START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
STATISTICS_DELAY_S = 1.5
SERVICE_TIMEOUT_S = 3.0
GATEWAY_API_KEY = "bench-sms-key"
NOTIFICATION_TABLE = "notifications_notification"

_TASK_SUCCEEDED = re.compile(
    r"Task apps\.notifications\.tasks\.notification_deliver_task\[[^\]]+\] succeeded in ([0-9.eE+-]+)s: '(\w+)'"
)
_TASK_FAILED = re.compile(r"Task apps\.notifications\.tasks\.notification_deliver_task\[[^\]]+\] raised")


class DeliveryBenchError(RuntimeError):
    """The benchmark could not be set up or run; the message says where."""


@dataclass(frozen=True)
class DeliveryPlan:
    count: int
    timeout_s: float
    # Telemed settings for the workers and the scanner on top of the defaults
    # (``--worker-env DB_CONN_MAX_AGE=60``), to compare a change with the default.
    settings_overrides: tuple[tuple[str, str], ...] = ()


FULL_DELIVERY = DeliveryPlan(count=FULL_COUNT, timeout_s=FULL_TIMEOUT_S)
SMOKE_DELIVERY = DeliveryPlan(count=SMOKE_COUNT, timeout_s=SMOKE_TIMEOUT_S)


@dataclass(frozen=True)
class WorkerFigures:
    name: str
    cpu_cores: float | None
    # What the delivery task returned (sent, skipped, retry, dead) or "raised", from the worker's log.
    task_results: dict[str, int]
    mean_task_ms: float | None


@dataclass
class DeliveryResult:
    count: int
    workers_started: int = 0
    skipped: str | None = None
    error: str | None = None
    setup_s: float | None = None
    seed_s: float | None = None
    elapsed_s: float = math.nan
    first_accepted_s: float | None = None
    all_enqueued_s: float | None = None
    scans: int = 0
    rows_enqueued: int = 0
    longest_scan_s: float | None = None
    settings_overrides: tuple[tuple[str, str], ...] = ()
    status_counts: dict[str, int] = field(default_factory=dict)
    accepted: int = 0
    requests: int = 0
    refused_requests: int = 0
    duplicate_requests: int = 0
    keys_accepted_more_than_once: int = 0
    numbers_accepted_more_than_once: int = 0
    workers: list[WorkerFigures] = field(default_factory=list)
    scanner_cpu_cores: float | None = None
    gateway_cpu_cores: float | None = None
    machine_busy_cores: float | None = None
    # CPU the virtual machine wanted but its hypervisor gave to others (steal time).
    machine_stolen_cores: float | None = None
    # From pg_stat_database for the run's database: connections opened, and
    # time spent executing statements (in cores, like the CPU figures).
    database_sessions: int | None = None
    database_active_cores: float | None = None
    # CPU of processes that are neither the benchmark's nor PostgreSQL or Redis
    # (other work on the machine slows the run down); processes that ended
    # during the window are not counted.
    others_cpu_cores: float | None = None
    # PostgreSQL and Redis, all their processes (other databases' work included).
    services_cpu_cores: float | None = None

    @property
    def sent(self) -> int:
        return self.status_counts.get("sent", 0)

    @property
    def not_sent(self) -> int:
        return self.count - self.sent

    @property
    def messages_per_s(self) -> float:
        return self.count / self.elapsed_s if self.elapsed_s > 0 else math.nan

    @property
    def measured(self) -> bool:
        return self.skipped is None

    @property
    def passed(self) -> bool:
        """Every row sent, each message accepted once, nothing sent twice."""
        return (
            self.skipped is None
            and self.error is None
            and self.not_sent == 0
            and self.accepted == self.count
            and self.duplicate_requests == 0
            and self.keys_accepted_more_than_once == 0
            and self.numbers_accepted_more_than_once == 0
        )


# --- Services -----------------------------------------------------------------


def url_with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def services_missing() -> str | None:
    """Why the benchmark cannot run here (PostgreSQL or Redis unreachable), or None."""
    reasons = []
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=int(SERVICE_TIMEOUT_S)) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        reasons.append(f"PostgreSQL is not reachable at {_redacted(POSTGRES_URL)} ({error.__class__.__name__})")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=SERVICE_TIMEOUT_S).ping()
    except redis.RedisError as error:
        reasons.append(f"Redis is not reachable at {_redacted(REDIS_URL)} ({error.__class__.__name__})")
    return "; ".join(reasons) or None


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


@contextmanager
def bench_database() -> Iterator[str]:
    """A fresh, empty database for this run; its URL. Dropped on the way out."""
    name = f"telemed_bench_{os.getpid()}"
    statement_drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(statement_drop)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield url_with_database(POSTGRES_URL, name)
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(statement_drop)


@contextmanager
def bench_redis() -> Iterator[str]:
    """The dedicated Redis database, flushed before and after."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    try:
        yield REDIS_URL
    finally:
        with suppress(redis.RedisError):
            client.flushdb()
        client.close()


@contextmanager
def sms_gateway() -> Iterator[SmsGateway]:
    # The tests' stand-in; imported here so the other benchmarks don't need the test dependencies.
    from tests.notifications.servers import SmsGateway

    gateway = SmsGateway(api_key=GATEWAY_API_KEY)
    try:
        yield gateway
    finally:
        gateway.stop()


# --- Processes ----------------------------------------------------------------


@dataclass(frozen=True)
class ProcessStat:
    pid: int
    command: str
    state: str
    group: int
    cpu_s: float
    # CPU of its children that it waited for (the postmaster's: ended backends).
    children_cpu_s: float


def processes() -> Iterator[ProcessStat]:
    """Every process, from /proc/<pid>/stat."""
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        # "pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ..."
        command = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu_s = (int(fields[11]) + int(fields[12])) / ticks
        children_cpu_s = (int(fields[13]) + int(fields[14])) / ticks
        yield ProcessStat(int(entry.name), command, fields[0], int(fields[2]), cpu_s, children_cpu_s)


def group_pids(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group."""
    return [process.pid for process in processes() if process.group == pgid and process.state not in {"Z", "X"}]


SERVICE_COMMANDS = ("postgres", "redis-server")


def services_cpu_seconds() -> float:
    """CPU so far of PostgreSQL and Redis: every live process, plus what the
    postmaster collected from the backends that ended (a backend that ends
    between two readings moves from the first sum to the second)."""
    return sum(
        process.cpu_s + process.children_cpu_s
        for process in processes()
        if process.command.startswith(SERVICE_COMMANDS)
    )


def cpu_seconds_outside(groups: set[int]) -> dict[int, float]:
    """CPU so far of every process outside these groups that is not PostgreSQL or Redis."""
    return {
        process.pid: process.cpu_s
        for process in processes()
        if process.group not in groups and not process.command.startswith(SERVICE_COMMANDS)
    }


def cpu_seconds_by_pid(pgid: int) -> dict[int, float]:
    seconds = {}
    for pid in group_pids(pgid):
        value = process_cpu_seconds(pid)
        if value is not None:
            seconds[pid] = value
    return seconds


def group_cpu_cores(before: dict[int, float], after: dict[int, float], wall_s: float) -> float | None:
    if wall_s <= 0 or not after:
        return None
    used = sum(value - before.get(pid, 0.0) for pid, value in after.items())
    return used / wall_s


def machine_busy_ticks() -> tuple[int, int] | None:
    """(busy, stolen) CPU ticks of the whole machine since boot, from /proc/stat:
    running anything, and wanted but given by the hypervisor to another machine."""
    try:
        first = Path("/proc/stat").read_text(encoding="ascii").splitlines()[0].split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(value) for value in first[1:9])
    return user + nice + system + irq + softirq, steal


def process_group_stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the group, SIGKILL if it lingers, then SIGKILL any straggler in it."""
    with suppress(subprocess.TimeoutExpired):
        server_stop(process)
    with suppress(ProcessLookupError):
        if group_pids(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_TIMEOUT_S)


def file_tail(path: Path) -> str:
    if not path.exists():
        return ""
    return path.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL_CHARS:]


@dataclass
class Worker:
    name: str
    hostname: str
    process: subprocess.Popen[bytes]
    log_path: Path


def worker_start(*, index: int, environment: dict[str, str], directory: Path) -> Worker:
    name = f"worker {index}"
    hostname = f"bench{os.getpid()}-{index}@localhost"
    log_path = directory / f"worker-{index}.log"
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "telemed",
        "worker",
        "--pool=prefork",
        "--concurrency=1",
        "--loglevel=INFO",  # as deploy/systemd/telemed-worker.service runs it
        "--without-gossip",
        "--without-mingle",
        "-n",
        hostname,
    ]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_DIR,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopping it reaches the prefork child too
        )
    return Worker(name=name, hostname=hostname, process=process, log_path=log_path)


def workers_wait_ready(workers: list[Worker]) -> None:
    """Until each worker logged '<hostname> ready.' (it consumes its queue)."""
    deadline = time.monotonic() + WORKER_START_TIMEOUT_S
    waiting = list(workers)
    while waiting:
        for worker in list(waiting):
            if worker.process.poll() is not None:
                raise DeliveryBenchError(
                    f"{worker.name} exited with {worker.process.returncode}:\n{file_tail(worker.log_path)}"
                )
            if f"{worker.hostname} ready." in worker.log_path.read_text(encoding="utf-8", errors="replace"):
                waiting.remove(worker)
        if waiting and time.monotonic() > deadline:
            names = ", ".join(worker.name for worker in waiting)
            tail = file_tail(waiting[0].log_path)
            raise DeliveryBenchError(f"{names} not ready after {WORKER_START_TIMEOUT_S:.0f} s:\n{tail}")
        time.sleep(0.2)


def log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def worker_figures(worker: Worker, cpu_cores: float | None, *, log_bytes: int) -> WorkerFigures:
    """What the worker logged in the first ``log_bytes`` of its log (the timed window)."""
    with worker.log_path.open("rb") as log:
        logged = log.read(log_bytes).decode("utf-8", errors="replace")
    results: Counter[str] = Counter()
    runtimes: list[float] = []
    for line in logged.splitlines():
        if match := _TASK_SUCCEEDED.search(line):
            runtimes.append(float(match.group(1)))
            results[match.group(2)] += 1
        elif _TASK_FAILED.search(line):
            results["raised"] += 1
    mean_ms = 1000 * sum(runtimes) / len(runtimes) if runtimes else None
    return WorkerFigures(name=worker.name, cpu_cores=cpu_cores, task_results=dict(results), mean_task_ms=mean_ms)


@dataclass
class Scanner:
    process: subprocess.Popen[bytes]
    stdin: IO[bytes]
    log_path: Path

    def scans(self) -> list[dict[str, float]]:
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]


def scanner_start(*, environment: dict[str, str], directory: Path) -> Scanner:
    log_path = directory / "scanner.log"
    command = [sys.executable, "-m", "bench.notifications_child", "scan", str(SCAN_INTERVAL_S)]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_DIR,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    assert process.stdin is not None
    return Scanner(process=process, stdin=process.stdin, log_path=log_path)


def scanner_wait_ready(scanner: Scanner) -> None:
    """Until the scanner printed 'ready' (Django set up, connected, waiting for the go signal)."""
    deadline = time.monotonic() + SCANNER_START_TIMEOUT_S
    while "ready" not in scanner.log_path.read_text(encoding="utf-8", errors="replace").split("\n"):
        if scanner.process.poll() is not None:
            tail = file_tail(scanner.log_path)
            raise DeliveryBenchError(f"the scanner exited with {scanner.process.returncode}:\n{tail}")
        if time.monotonic() > deadline:
            raise DeliveryBenchError(f"the scanner was not ready after {SCANNER_START_TIMEOUT_S:.0f} s")
        time.sleep(0.1)


def seed_run(*, count: int, environment: dict[str, str]) -> float:
    command = [sys.executable, "-m", "bench.notifications_child", "seed", str(count)]
    completed = subprocess.run(
        command,
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=SEED_TIMEOUT_S,
        check=False,
    )
    output = completed.stdout + completed.stderr
    if completed.returncode != 0:
        raise DeliveryBenchError(f"seeding failed ({completed.returncode}):\n{output[-LOG_TAIL_CHARS:]}")
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    if summary["due"] != count:
        raise DeliveryBenchError(f"seeding made {summary['due']} due notifications, not {count}")
    return float(summary["seconds"])


# --- The run --------------------------------------------------------------------


def status_counts(connection: psycopg.Connection[Any]) -> dict[str, int]:
    query = sql.SQL("SELECT status, count(*) FROM {} GROUP BY status").format(sql.Identifier(NOTIFICATION_TABLE))
    return {str(status): int(count) for status, count in connection.execute(query).fetchall()}


def last_sent_at(connection: psycopg.Connection[Any]) -> float | None:
    query = sql.SQL("SELECT extract(epoch FROM max(sent_at)) FROM {}").format(sql.Identifier(NOTIFICATION_TABLE))
    row = connection.execute(query).fetchone()
    return float(row[0]) if row and row[0] is not None else None


def database_activity(connection: psycopg.Connection[Any]) -> tuple[int, float] | None:
    """(sessions opened, milliseconds spent executing statements) in this database so far."""
    row = connection.execute(
        "SELECT sessions, active_time FROM pg_stat_database WHERE datname = current_database()"
    ).fetchone()
    return (int(row[0]), float(row[1])) if row and row[0] is not None else None


def deliveries_wait(
    *, connection: psycopg.Connection[Any], plan: DeliveryPlan, workers: list[Worker], started_at: float
) -> tuple[dict[str, int], str | None]:
    """Poll the rows until all are sent; (status counts, why it stopped early or None)."""
    deadline = time.monotonic() + plan.timeout_s
    next_progress = time.monotonic() + PROGRESS_EVERY_S
    while True:
        counts = status_counts(connection)
        sent, dead = counts.get("sent", 0), counts.get("dead", 0)
        if sent == plan.count:
            return counts, None
        if sent + dead == plan.count:
            return counts, f"{dead} notification(s) ended dead"
        for worker in workers:
            if worker.process.poll() is not None:
                return counts, f"{worker.name} exited with {worker.process.returncode}"
        if time.monotonic() > deadline:
            return counts, f"gave up after {plan.timeout_s:.0f} s with {plan.count - sent} notification(s) not sent"
        if time.monotonic() >= next_progress:
            waiting = ", ".join(f"{status} {count:,}" for status, count in sorted(counts.items()))
            print(f"    {time.time() - started_at:5.1f} s: {waiting}", flush=True)
            next_progress += PROGRESS_EVERY_S
        time.sleep(POLL_INTERVAL_S)


def gateway_figures(result: DeliveryResult, gateway: SmsGateway, started_at: float) -> None:
    accepted = gateway.accepted
    requests = gateway.requests
    result.accepted = len(accepted)
    result.requests = len(requests)
    result.refused_requests = sum(1 for request in requests if request.status != 200)
    result.duplicate_requests = gateway.duplicates
    result.keys_accepted_more_than_once = sum(1 for count in gateway.accepted_count_by_key.values() if count > 1)
    result.numbers_accepted_more_than_once = sum(
        1 for count in Counter(sms.to for sms in accepted).values() if count > 1
    )
    if accepted:
        result.first_accepted_s = min(sms.accepted_at for sms in accepted) - started_at


def scan_figures(result: DeliveryResult, scanner: Scanner, *, started_at: float, ended_at: float) -> None:
    total = 0
    for scan in scanner.scans():
        if scan["at"] > ended_at:
            break
        result.scans += 1
        total += int(scan["enqueued"])
        if int(scan["enqueued"]):
            result.longest_scan_s = max(result.longest_scan_s or 0.0, scan["seconds"])
        if result.all_enqueued_s is None and total >= result.count:
            result.all_enqueued_s = scan["at"] + scan["seconds"] - started_at
    result.rows_enqueued = total


def delivery_run(plan: DeliveryPlan) -> DeliveryResult:
    """Run the benchmark; a result that says skipped, failed or what it measured.
    Raises only on interruption (Ctrl-C, SIGTERM), after cleaning up."""
    return outcome_measure(
        DeliveryResult(count=plan.count, settings_overrides=plan.settings_overrides),
        missing=services_missing(),
        needs="PostgreSQL and Redis",
        measure=lambda result: _delivery_measure(plan, result),
        expected=(psycopg.Error, redis.RedisError),
    )


def _delivery_measure(plan: DeliveryPlan, result: DeliveryResult) -> None:
    setup_started = time.monotonic()
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="telemed-bench-notify-")))
        database_url = stack.enter_context(bench_database())
        redis_url = stack.enter_context(bench_redis())
        gateway = stack.enter_context(sms_gateway())
        environment = embedded_environment(var_dir=directory / "var")
        environment.update(
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            PYTHONUNBUFFERED="1",
            **gateway.worker_env(),
        )
        environment.update(plan.settings_overrides)
        print(f"  database {urlsplit(database_url).path.lstrip('/')}, Redis {_redacted(redis_url)}", flush=True)
        print("  manage.py migrate", flush=True)
        manage_py_run("migrate", "--noinput", environment=environment)
        print(f"  creating {plan.count:,} patients with a due SMS notification each", flush=True)
        result.seed_s = seed_run(count=plan.count, environment=environment)

        print(f"  starting {WORKER_COUNT} Celery workers (prefork, concurrency 1) and the scanner", flush=True)
        workers: list[Worker] = []
        for index in range(1, WORKER_COUNT + 1):
            worker = worker_start(index=index, environment=environment, directory=directory)
            workers.append(worker)
            stack.callback(process_group_stop, worker.process)
        result.workers_started = len(workers)
        scanner = scanner_start(environment=environment, directory=directory)
        stack.callback(scanner.stdin.close)
        stack.callback(process_group_stop, scanner.process)
        workers_wait_ready(workers)
        scanner_wait_ready(scanner)
        result.setup_s = time.monotonic() - setup_started

        with psycopg.connect(database_url, autocommit=True) as connection:
            print(f"  delivering {plan.count:,} SMS (limit {plan.timeout_s:.0f} s)", flush=True)
            own_groups = {os.getpgrp(), scanner.process.pid, *(worker.process.pid for worker in workers)}
            workers_cpu_before = [cpu_seconds_by_pid(worker.process.pid) for worker in workers]
            scanner_cpu_before = cpu_seconds_by_pid(scanner.process.pid)
            own_before = _own_cpu_seconds()
            machine_before = machine_busy_ticks()
            others_before = cpu_seconds_outside(own_groups)
            services_before = services_cpu_seconds()
            database_before = database_activity(connection)
            started_at = time.time()
            wall_started = time.monotonic()
            scanner.stdin.write(b"go\n")
            scanner.stdin.flush()

            counts, stopped = deliveries_wait(connection=connection, plan=plan, workers=workers, started_at=started_at)

            wall_s = time.monotonic() - wall_started
            ended_at = time.time()
            workers_cpu_after = [cpu_seconds_by_pid(worker.process.pid) for worker in workers]
            workers_log_bytes = [log_size(worker.log_path) for worker in workers]
            scanner_cpu_after = cpu_seconds_by_pid(scanner.process.pid)
            own_after = _own_cpu_seconds()
            machine_after = machine_busy_ticks()
            others_after = cpu_seconds_outside(own_groups)
            services_after = services_cpu_seconds()
            # Let requests still in flight (a task run twice) reach the gateway, and the
            # workers' connections report their statistics (at most once a second).
            time.sleep(STATISTICS_DELAY_S)
            database_after = database_activity(connection)
            result.status_counts = counts
            last = last_sent_at(connection)

        if stopped is None and last is not None:
            result.elapsed_s = last - started_at
        else:
            result.error = stopped or "no notification was sent"
        result.scanner_cpu_cores = group_cpu_cores(scanner_cpu_before, scanner_cpu_after, wall_s)
        result.gateway_cpu_cores = (own_after - own_before) / wall_s if wall_s > 0 else None
        if database_before and database_after and wall_s > 0:
            result.database_sessions = database_after[0] - database_before[0]
            result.database_active_cores = (database_after[1] - database_before[1]) / 1000 / wall_s
        result.others_cpu_cores = group_cpu_cores(others_before, others_after, wall_s)
        result.services_cpu_cores = (services_after - services_before) / wall_s if wall_s > 0 else None
        if machine_before and machine_after and wall_s > 0:
            ticks_per_s = os.sysconf("SC_CLK_TCK") * wall_s
            result.machine_busy_cores = (machine_after[0] - machine_before[0]) / ticks_per_s
            result.machine_stolen_cores = (machine_after[1] - machine_before[1]) / ticks_per_s
        gateway_figures(result, gateway, started_at)
        scan_figures(result, scanner, started_at=started_at, ended_at=ended_at)
        result.workers = [
            worker_figures(worker, group_cpu_cores(before, after, wall_s), log_bytes=log_bytes)
            for worker, before, after, log_bytes in zip(
                workers, workers_cpu_before, workers_cpu_after, workers_log_bytes, strict=True
            )
        ]
        print("  stopping the workers, dropping the database", flush=True)


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
