"""The doctor workspace with a large practice: the dashboard, the patient
list (with and without a search) and a patient's chart, for a busy doctor.

``python -m bench.care`` (``--smoke`` for a small data set, ``--rebuild`` to
build the full one again). Set-up, not timed here:

- PostgreSQL only (the sizes are a production's): a database of its own,
  ``telemed_bench_care``, migrated, and filled once by ``manage.py
  care_bench_data`` (5,000 patients, 1,000,000 readings, 50,000
  appointments; a few minutes, timed and reported) and **kept** for the
  next run, which reuses it (``--rebuild`` drops it first). The smoke run
  builds a small set in a throw-away database instead.
- this process opens that database with Telemed's settings (embedded mode
  otherwise: no Redis, the file broker, ``DB_CONN_MAX_AGE=0``) and signs in
  the busy doctor (``doctor0@bench.invalid``: a tenth of the patients, a
  full day of appointments today) with a session, as a browser would have
  after sign-in and MFA.

Timed: each page ``GET`` after a warm-up, one request after the other on one
keep-alive connection to one Daphne process (``telemed.asgi``) on the same
machine, session cookie, gzip accepted: p50/p95 of the round trip, which on
loopback is the server's time. Each page's SQL queries are also counted once,
in this process (Django's test client).

Pages: ``/care/`` (dashboard), ``/care/patients/`` (first page of the list),
``/care/patients/?q=<surname>`` (a search that matches many), and
``/care/patients/<id>/`` (the chart of the busy doctor's patient with the
most readings; reported as not there yet when it answers 404).

``python -m bench --only care`` runs the same in a child process and
rewrites the "Doctor workspace" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.http_load import percentile_ms
from bench.server import (
    ServerError,
    child_figures,
    daphne_process,
    django_setup_here,
    embedded_environment,
    manage_py_run,
)
from bench.slots import utc_now_text

CARE_HEADING = "## Doctor workspace (dashboard, patient list, chart) with 1,000,000 readings"
FULL_DATABASE = os.environ.get("BENCH_CARE_DATABASE", "telemed_bench_care")
BUSY_DOCTOR_EMAIL = "doctor0@bench.invalid"
SEARCH_TERM = "王"  # the commonest surname of the generated names: a search that matches many
GOAL_P95_MS = 150.0
REQUEST_TIMEOUT_S = 30.0
CHILD_TIMEOUT_S = 3600


@dataclass(frozen=True)
class CarePlan:
    patients: int = 5000
    readings: int = 1_000_000
    appointments: int = 50_000
    requests: int = 60
    warmup: int = 5
    keep_database: bool = True  # the full data set is reused by the next run
    rebuild: bool = False


FULL_CARE = CarePlan()
SMOKE_CARE = CarePlan(patients=200, readings=20_000, appointments=2000, requests=8, warmup=2, keep_database=False)


@dataclass
class PageTiming:
    label: str
    path: str
    status: int = 0
    requests: int = 0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    max_ms: float = 0.0
    queries: int | None = None
    sql_ms: float | None = None  # the queries' time, median of the in-process requests
    django_p50_ms: float | None = None  # the view through Django's handler in this process (no ASGI, no socket)
    django_p95_ms: float | None = None
    server_cpu_ms: float | None = None  # Daphne's CPU time per measured request
    gzip_bytes: int = 0
    note: str = ""  # why it was not measured

    @property
    def measured(self) -> bool:
        return self.status == 200 and self.requests > 0


@dataclass
class CareResult:
    skipped: str | None = None
    measured_at: str = field(default_factory=utc_now_text)
    load_average: float | None = None
    run_s: float = 0.0
    build_s: float | None = None
    build_output: str = ""
    built_at: str = ""
    reused: bool = False  # the data set was built by an earlier run
    patients: int = 0
    readings: int = 0
    appointments: int = 0
    open_alerts: int = 0
    doctor_patients: int = 0
    doctor_appointments: int = 0
    chart_readings: int = 0
    pages: list[PageTiming] = field(default_factory=list)
    error: str | None = None

    @property
    def measured(self) -> bool:
        return self.skipped is None

    @property
    def passed(self) -> bool:
        """Every page there answered 200 (a chart not built yet is no failure)."""
        return self.error is None and all(page.measured or page.status == 404 for page in self.pages)


# --- Set-up ---------------------------------------------------------------------


def _postgres_missing() -> str | None:
    import psycopg

    from bench.notifications import POSTGRES_URL

    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        return f"PostgreSQL is not reachable ({error.__class__.__name__})"
    return None


@contextmanager
def _database(plan: CarePlan) -> Iterator[str]:
    """The data set's database URL: kept between full runs, fresh for a smoke run."""
    import psycopg
    from psycopg import sql

    from bench.notifications import POSTGRES_URL, bench_database, url_with_database

    if not plan.keep_database:
        with bench_database() as url:
            yield url
        return
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        if plan.rebuild:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(FULL_DATABASE)))
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [FULL_DATABASE]).fetchone()
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(FULL_DATABASE)))
    yield url_with_database(POSTGRES_URL, FULL_DATABASE)


def _data_ready(plan: CarePlan) -> bool:
    """Does the database hold this plan's data set (built by a previous run)?"""
    from apps.accounts.models import User
    from apps.vitals.models import Reading

    if not User.objects.filter(email=BUSY_DOCTOR_EMAIL).exists():
        return False
    patients = User.objects.filter(email__startswith="patient", email__endswith="@bench.invalid").count()
    return patients == plan.patients and Reading.objects.count() >= plan.readings * 0.99


def _data_build(result: CareResult, plan: CarePlan) -> None:
    import io

    from django.core.management import call_command

    output = io.StringIO()
    started = time.perf_counter()
    call_command(
        "care_bench_data",
        patients=plan.patients,
        readings=plan.readings,
        appointments=plan.appointments,
        reset=True,
        stdout=output,
    )
    result.build_s = time.perf_counter() - started
    result.build_output = output.getvalue().rstrip()
    result.built_at = utc_now_text()
    _build_note_write(result)


def _build_note_write(result: CareResult) -> None:
    """Remember how the kept data set was built (for the runs that reuse it)
    in the database's comment."""
    from django.db import connection

    note = json.dumps({"build_s": result.build_s, "build_output": result.build_output, "built_at": result.built_at})
    with connection.cursor() as cursor:
        cursor.execute(
            f"COMMENT ON DATABASE {connection.ops.quote_name(connection.settings_dict['NAME'])} IS %s", [note]
        )


def _build_note_read(result: CareResult) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()"
        )
        row = cursor.fetchone()
    try:
        note = json.loads(row[0]) if row and row[0] else {}
    except json.JSONDecodeError:
        note = {}
    result.reused = True
    result.build_s = note.get("build_s")
    result.build_output = note.get("build_output", "")
    result.built_at = note.get("built_at", "")


def _data_describe(result: CareResult, doctor: Any) -> Any:
    """Counts of the data set and the busy doctor's share; the patient whose chart is timed."""
    from django.db.models import Count

    from apps.accounts.models import User
    from apps.scheduling.models import Appointment
    from apps.vitals.models import Alert, Reading

    result.patients = User.objects.filter(patient_profile__isnull=False).count()
    result.readings = Reading.objects.count()
    result.appointments = Appointment.objects.count()
    result.open_alerts = Alert.objects.filter(status="open").count()
    mine = Appointment.objects.filter(doctor=doctor)
    result.doctor_appointments = mine.count()
    result.doctor_patients = mine.values("patient_id").distinct().count()
    busiest = (
        Reading.objects.filter(patient_id__in=mine.values("patient_id"))
        .values("patient_id")
        .annotate(n=Count("id"))
        .order_by("-n")
        .first()
    )
    if busiest is None:
        raise RuntimeError("the busy doctor has no patient with readings")
    result.chart_readings = busiest["n"]
    return busiest["patient_id"]


def _pages(patient_id: int) -> list[PageTiming]:
    from urllib.parse import quote

    return [
        PageTiming(label="dashboard", path="/care/"),
        PageTiming(label="patient list", path="/care/patients/"),
        PageTiming(label="patient list, search", path=f"/care/patients/?q={quote(SEARCH_TERM)}"),
        PageTiming(label="patient chart", path=f"/care/patients/{patient_id}/"),
    ]


# --- Timed parts ----------------------------------------------------------------------


def _in_process_measure(client: Any, page: PageTiming, plan: CarePlan) -> None:
    """The page through Django's handler in this process (the database
    connection kept): its queries, their time, and p50/p95 of the whole
    request without Daphne and the socket."""
    import statistics

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sql_ms, samples = [], []
    for index in range(plan.warmup + plan.requests // 2):
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as captured:
            response = client.get(page.path, HTTP_HOST="127.0.0.1", HTTP_ACCEPT_ENCODING="gzip")
        elapsed = time.perf_counter() - started
        page.status = response.status_code
        if response.status_code != 200:
            return
        page.queries = len(captured.captured_queries)
        if index >= plan.warmup:
            samples.append(elapsed)
            sql_ms.append(sum(float(query["time"]) for query in captured.captured_queries) * 1000)
    page.sql_ms = statistics.median(sql_ms)
    page.django_p50_ms = percentile_ms(samples, 50)
    page.django_p95_ms = percentile_ms(samples, 95)


def _page_measure(client: httpx.Client, page: PageTiming, plan: CarePlan, *, server_pid: int) -> None:
    from bench.server import process_cpu_seconds

    samples: list[float] = []
    cpu_before: float | None = None
    for index in range(plan.warmup + plan.requests):
        if index == plan.warmup:
            cpu_before = process_cpu_seconds(server_pid)
        started = time.perf_counter()
        response = client.get(page.path, headers={"Accept-Encoding": "gzip"})
        elapsed = time.perf_counter() - started
        page.status = response.status_code
        if response.status_code == 404:
            page.note = "answers 404: not built yet"
            return
        if response.status_code != 200:
            page.note = f"answered {response.status_code}"
            return
        if index >= plan.warmup:
            samples.append(elapsed)
        page.gzip_bytes = int(response.headers.get("content-length") or len(response.content))
    cpu_after = process_cpu_seconds(server_pid)
    if cpu_before is not None and cpu_after is not None and samples:
        page.server_cpu_ms = (cpu_after - cpu_before) * 1000 / len(samples)
    page.requests = len(samples)
    page.p50_ms = percentile_ms(samples, 50)
    page.p95_ms = percentile_ms(samples, 95)
    page.max_ms = max(samples) * 1000


def care_run(plan: CarePlan) -> CareResult:
    """Sets Django up in this process: run it in a process of its own
    (``care_run_isolated``) beside other benchmarks."""
    missing = _postgres_missing()
    if missing is not None:
        return CareResult(skipped=missing)
    result = CareResult(load_average=os.getloadavg()[0])
    started = time.perf_counter()
    with ExitStack() as stack:
        database_url = stack.enter_context(_database(plan))
        var_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="telemed-bench-care-")))
        environment = embedded_environment(var_dir=var_dir)
        environment["DATABASE_URL"] = database_url
        try:
            manage_py_run("migrate", "--noinput", environment=environment)
            manage_py_run("collectstatic", "--noinput", environment=environment)
            django_setup_here(environment)
            if _data_ready(plan):
                _build_note_read(result)
            else:
                print("Building the data set (care_bench_data) …", file=sys.stderr, flush=True)
                _data_build(result, plan)
            from django.test import Client

            from apps.accounts.models import User

            doctor = User.objects.get(email=BUSY_DOCTOR_EMAIL)
            patient_id = _data_describe(result, doctor)
            result.pages = _pages(patient_id)
            client = Client()
            client.force_login(doctor)
            for page in result.pages:
                _in_process_measure(client, page, plan)
            cookie = client.cookies["sessionid"].value
            from django.db import connections

            connections.close_all()
            with (
                daphne_process(environment=environment, log_path=var_dir / "daphne.log") as server,
                httpx.Client(
                    base_url=server.base_url, timeout=REQUEST_TIMEOUT_S, cookies={"sessionid": cookie}
                ) as http,
            ):
                for page in result.pages:
                    _page_measure(http, page, plan, server_pid=server.pid)
        except (ServerError, RuntimeError, httpx.HTTPError) as error:
            result.error = f"{error.__class__.__name__}: {error}"
        finally:
            from django.db import connections

            connections.close_all()  # before a throw-away database is dropped
    result.run_s = time.perf_counter() - started
    return result


def care_run_isolated(plan: CarePlan) -> CareResult:
    """``care_run`` in a child process (``python -m bench.care --child``)."""
    try:
        figures = child_figures("bench.care", plan, timeout_s=CHILD_TIMEOUT_S)
    except RuntimeError as error:
        return CareResult(error=str(error))
    figures["pages"] = [PageTiming(**page) for page in figures["pages"]]
    return CareResult(**figures)


# --- Report ------------------------------------------------------------------------------


def _verdict(page: PageTiming) -> str:
    if not page.measured:
        return page.note or "not measured"
    return "within the goal" if page.p95_ms < GOAL_P95_MS else f"**over the goal** ({GOAL_P95_MS:.0f} ms)"


def _machine() -> str:
    import platform

    return f"{platform.platform()}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}"


def care_markdown(result: CareResult) -> str:
    lines = [
        CARE_HEADING,
        "",
        "The doctor's workspace for a busy doctor of a large practice: PostgreSQL with the data set of "
        "`manage.py care_bench_data` (5,000 patients with profiles and consent at 5 clinics with 30 doctors; "
        "1,000,000 readings over two years, flagged by the product's rules, with open alerts for the last "
        "two weeks' urgent and critical ones; 50,000 appointments, past ones completed, missed or cancelled "
        "and future ones booked; care teams, signed notes and diagnoses). The busy doctor has a tenth of the "
        "patients and a full day today. Each page is requested one after the other on one keep-alive "
        "connection to one Daphne process on the same machine (session cookie, gzip accepted), after a "
        "warm-up; on loopback the round trip is the server's time. Daphne's CPU time per request is read from "
        "/proc around the measured requests (less sensitive than wall time to other work on the machine). "
        "In the benchmark's process, the same pages through Django's handler (the test client, the database "
        "connection kept, no ASGI and no socket): their queries, the queries' time (median) and p50/p95 of the "
        "whole request. "
        "Embedded mode otherwise (`DB_CONN_MAX_AGE=0`: a connection per request, no "
        f"Redis). Goal: p95 under {GOAL_P95_MS:.0f} ms. `python -m bench --only care` (or "
        "`python -m bench.care`) runs just this and rewrites this section; the data set's database "
        f"(`{FULL_DATABASE}`) is kept for the next run (`python -m bench.care --rebuild` builds it again).",
        "",
    ]
    if result.skipped is not None:
        lines.append(f"**Skipped**: {result.skipped}.")
        return "\n".join(lines)
    if result.error:
        lines.append(f"**Failed**: {result.error}")
        return "\n".join(lines)
    lines += [
        "| page | answer | queries | SQL ms | in-process p50 / p95 ms | Daphne CPU ms | p50 ms | p95 ms | max ms "
        "| gzipped | verdict |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for page in result.pages:
        if page.measured:
            lines.append(
                f"| {page.label} (`{page.path}`) | 200, {page.requests} requests | {page.queries} "
                f"| {_ms(page.sql_ms)} | {_ms(page.django_p50_ms)} / {_ms(page.django_p95_ms)} "
                f"| {_ms(page.server_cpu_ms)} | {page.p50_ms:.1f} "
                f"| **{page.p95_ms:.1f}** | {page.max_ms:.1f} | {page.gzip_bytes / 1024:.1f} KB | {_verdict(page)} |"
            )
        else:
            lines.append(f"| {page.label} (`{page.path}`) | {page.status} | | | | | | | | | {_verdict(page)} |")
    built = (
        f"built in {result.build_s:.0f} s by `care_bench_data` ({_build_steps(result.build_output)})"
        if result.build_s is not None
        else "built by an earlier run"
    )
    if result.reused:
        built += f", {result.built_at or 'at an unknown time'}, and reused by this one"
    lines += [
        "",
        f"- Data: {result.patients:,} patients, {result.readings:,} readings, {result.appointments:,} "
        f"appointments, {result.open_alerts:,} open alerts; {built}. The busy doctor: {result.doctor_patients:,} "
        f"patients, {result.doctor_appointments:,} appointments; the chart is of their patient with the most "
        f"readings ({result.chart_readings:,}).",
        f"- Measured {result.measured_at} on {_machine()}; the run took {result.run_s:.0f} s with its set-up; "
        "the machine's load average over the minute before: "
        f"{'n/a' if result.load_average is None else f'{result.load_average:.2f}'} (other work shared its "
        "cores, so the times are rough).",
    ]
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _build_steps(output: str) -> str:
    """The generator's timed steps ("  readings and alerts: 246.4 s" lines)."""
    steps = [line.strip() for line in output.splitlines() if re.fullmatch(r"\s*[^:]+: [0-9.]+ s", line)]
    return "; ".join(steps) or "no timings"


def care_summary_text(result: CareResult) -> str:
    if result.skipped is not None:
        return f"Doctor workspace: skipped ({result.skipped})"
    if result.error:
        return f"Doctor workspace: FAILED: {result.error}"
    built = f"built in {result.build_s:.0f} s" if result.build_s is not None else "built earlier"
    if result.reused:
        built += ", reused"
    lines = [
        f"Doctor workspace ({result.patients:,} patients, {result.readings:,} readings, "
        f"{result.appointments:,} appointments; data {built}):"
    ]
    for page in result.pages:
        if page.measured:
            lines.append(
                f"  {page.label:<22} p50 {page.p50_ms:6.1f} ms  p95 {page.p95_ms:6.1f} ms  {page.queries} queries "
                f"({_ms(page.sql_ms)} ms SQL)  in-process p50 {_ms(page.django_p50_ms)} / p95 "
                f"{_ms(page.django_p95_ms)} ms  Daphne CPU {_ms(page.server_cpu_ms)} ms  "
                f"{page.gzip_bytes / 1024:.1f} KB gzipped  ({_verdict(page)})"
            )
        else:
            lines.append(f"  {page.label:<22} {page.status}: {page.note}")
    lines.append(f"  {'passed' if result.passed else 'FAILED'}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="a small data set in a throw-away database")
    parser.add_argument("--rebuild", action="store_true", help="drop the kept data set and build it again")
    parser.add_argument("--child", metavar="PLAN_JSON", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        result = care_run(CarePlan(**json.loads(arguments.child)))
        print(json.dumps(dataclasses.asdict(result)))
        return 0
    plan = SMOKE_CARE if arguments.smoke else dataclasses.replace(FULL_CARE, rebuild=arguments.rebuild)
    result = care_run(plan)
    print(care_summary_text(result))
    return 0 if result.passed or not result.measured else 1


if __name__ == "__main__":
    sys.exit(main())
