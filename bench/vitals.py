"""Vitals: a CSV import of 10,000 readings, the readings API's single POST,
and the chart data of five years of daily readings.

``python -m bench.vitals`` (``--smoke`` for tiny sizes). Set-up, not timed:
a fresh PostgreSQL database (``telemed_bench_<pid>``, dropped afterwards;
SQLite in the run's directory when PostgreSQL is not reachable), a fresh
TELEMED_VAR_DIR, ``manage.py migrate``; this process then opens the same
database with Telemed's settings (embedded mode otherwise: no Redis, the
file broker) and seeds one doctor, clinic and appointment and the patients
(consent given; personal access tokens for the API clients).

Timed:
- **import**: a CSV of 10,000 readings (five kinds, glucose in both units,
  decimal commas, one patient, over five years) through the product's
  path: ``csv_parse``, ``readings_import_preview`` (every row checked as
  ``reading_record`` does, the duplicates looked up) and ``readings_import``
  (``readings_record_many``: all or nothing, audited, flagged; the urgent
  ones open alerts for the doctor). Seconds for each step, in this process.
- **api_post**: ``POST /api/v1/readings/`` with one blood pressure each,
  token-authenticated, sent one after the other on one keep-alive
  connection to one Daphne process (``telemed.asgi``) on the same
  database; the clients are five patients in turn (the API throttles 600
  requests a minute per user). p50/p95 of the request's round trip, after
  a warm-up.
- **chart**: ``GET /vitals/chart.json?period=all`` for a patient with five
  years of daily blood pressures (imported beforehand), as the browser asks
  for it (session cookie, gzip accepted), through the same Daphne: the
  body's size (raw and gzipped) and p50/p95 time.

``python -m bench --only vitals`` runs the same in a child process (this
one sets Django up for itself) and rewrites the "Vitals" section of
docs/benchmarks.md; ``make bench`` runs it with the others.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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

API_PATH = "/api/v1/readings/"
CHART_PATH = "/vitals/chart.json?period=all"
API_CLIENTS = 5
REQUEST_TIMEOUT_S = 30.0
CHILD_TIMEOUT_S = 1800
VITALS_HEADING = "## Vitals (CSV import, readings API, chart data)"


@dataclass(frozen=True)
class VitalsPlan:
    import_rows: int = 10_000
    api_posts: int = 400
    api_warmup: int = 25
    chart_days: int = 5 * 365
    chart_requests: int = 30


FULL_VITALS = VitalsPlan()
SMOKE_VITALS = VitalsPlan(import_rows=300, api_posts=40, api_warmup=5, chart_days=400, chart_requests=5)


@dataclass
class VitalsResult:
    skipped: str | None = None  # never: without PostgreSQL it runs on SQLite
    measured_at: str = field(default_factory=utc_now_text)
    load_average: float | None = None  # the machine's, over the minute before the measurement
    run_s: float = 0.0
    database: str = ""
    import_rows: int = 0
    import_parse_s: float = 0.0
    import_preview_s: float = 0.0
    import_record_s: float = 0.0
    import_stored: int = 0
    import_alerts: int = 0
    api_posts: int = 0
    api_statuses: dict[int, int] = field(default_factory=dict)
    api_p50_ms: float = 0.0
    api_p95_ms: float = 0.0
    chart_days: int = 0
    chart_points: int = 0
    chart_bucket_days: int = 0
    chart_bytes: int = 0
    chart_gzip_bytes: int = 0
    chart_p50_ms: float = 0.0
    chart_p95_ms: float = 0.0
    error: str | None = None

    @property
    def import_total_s(self) -> float:
        return self.import_parse_s + self.import_preview_s + self.import_record_s

    @property
    def measured(self) -> bool:
        return self.skipped is None

    @property
    def passed(self) -> bool:
        return (
            self.error is None
            and self.import_stored == self.import_rows
            and set(self.api_statuses) == {201}
            and self.chart_points > 0
        )


# --- Set-up ---------------------------------------------------------------------


@contextmanager
def _database() -> Iterator[tuple[str | None, str]]:
    """A fresh PostgreSQL database's URL (None: SQLite) and its label."""
    from bench.notifications import bench_database, services_missing

    if services_missing() is not None:
        yield None, "SQLite (PostgreSQL not reachable)"
        return
    with bench_database() as url:
        yield url, "PostgreSQL"


def _environment(*, var_dir: Path, database_url: str | None) -> dict[str, str]:
    environment = embedded_environment(var_dir=var_dir)
    if database_url:
        environment["DATABASE_URL"] = database_url
    return environment


def _people(count: int) -> tuple[Any, list[Any]]:
    """A doctor with an appointment with each of ``count`` patients (all consented)."""
    from django.utils import timezone

    from apps.accounts.models import PatientProfile, User
    from apps.accounts.services import consent_give
    from apps.clinics.models import Clinic, Membership, Role
    from apps.scheduling.models import Appointment

    clinic = Clinic.objects.create(name="Bench clinic", timezone="Asia/Shanghai")
    doctor = User.objects.create(full_name="Bench doctor", email="doctor@bench.invalid", timezone="Asia/Shanghai")
    Membership.objects.create(user=doctor, clinic=clinic, role=Role.DOCTOR)
    patients = []
    for index in range(count):
        patient = User.objects.create(
            full_name=f"Bench patient {index}",
            email=f"patient{index}@bench.invalid",
            timezone="Asia/Shanghai",
            language="en",
        )
        PatientProfile.objects.create(user=patient)
        consent_give(patient=patient, given_by=patient)
        starts_at = timezone.now() + timedelta(days=1, hours=index)
        Appointment.objects.create(
            patient=patient,
            doctor=doctor,
            clinic=clinic,
            starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=30),
            mode="video",
            booked_by=patient,
        )
        patients.append(patient)
    return doctor, patients


def import_csv(rows: int, *, now: datetime) -> bytes:
    """``rows`` readings of one patient over five years, oldest first: blood
    pressure (half), glucose in mg/dL and in mmol/L with decimal commas,
    SpO2, temperature, weight; a few urgent or critical."""
    step = timedelta(days=5 * 365) / rows
    start = now - timedelta(days=5 * 365)
    lines = ["measured_at;kind;systolic;diastolic;pulse;value;unit;context;note"]
    for index in range(rows):
        moment = (start + step * index).replace(second=0, microsecond=0)
        when = moment.strftime("%Y-%m-%d %H:%M")
        slot = index % 10
        if slot < 5:
            systolic = 190 if index % 997 == 0 else 118 + index % 45
            lines.append(f"{when};blood_pressure;{systolic};{72 + index % 20};{58 + index % 35};;;;")
        elif slot < 7:
            unit, value = ("mg/dL", str(90 + index % 80)) if slot == 5 else ("mmol/L", f"{5 + index % 5},{index % 10}")
            lines.append(f"{when};glucose;;;;{value};{unit};{'fasting' if index % 2 else 'after_meal'};")
        elif slot == 7:
            lines.append(f"{when};spo2;;;;{93 + index % 7};%;;")
        elif slot == 8:
            lines.append(f"{when};temperature;;;;36,{index % 10};°C;;")
        else:
            lines.append(f"{when};weight;;;;{60 + index % 7},{index % 10};kg;;")
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode()


def daily_csv(days: int, *, now: datetime) -> bytes:
    lines = ["measured_at,kind,systolic,diastolic,pulse,value,unit,context,note"]
    for day in range(days, 0, -1):
        moment = (now - timedelta(days=day)).replace(hour=7, minute=30, second=0, microsecond=0)
        lines.append(f"{moment:%Y-%m-%d %H:%M},blood_pressure,{120 + day % 40},{75 + day % 25},{60 + day % 30},,,,")
    return ("\r\n".join(lines) + "\r\n").encode()


# --- Timed parts ----------------------------------------------------------------------


def _import_measure(result: VitalsResult, *, patient: Any, rows: int) -> None:
    import zoneinfo

    from django.utils import timezone

    from apps.vitals.csv_import import csv_parse
    from apps.vitals.import_services import readings_import, readings_import_preview
    from apps.vitals.models import Alert, Reading

    zone = zoneinfo.ZoneInfo("Asia/Shanghai")
    data = import_csv(rows, now=timezone.now().astimezone(zone) - timedelta(hours=1))
    started = time.perf_counter()
    parsed = csv_parse(data=data, tz=zone, glucose_unit="mmol/L")
    result.import_parse_s = time.perf_counter() - started
    if parsed.errors:
        raise RuntimeError(f"the bench's own CSV has errors: {parsed.errors[:3]}")
    started = time.perf_counter()
    preview = readings_import_preview(by=patient, patient=patient, parsed=parsed)
    result.import_preview_s = time.perf_counter() - started
    if not preview.ok or preview.new != rows:
        raise RuntimeError(f"preview: {preview.new} new of {rows}, errors {preview.errors[:3]}")
    started = time.perf_counter()
    imported = readings_import(by=patient, patient=patient, parsed=parsed)
    result.import_record_s = time.perf_counter() - started
    result.import_rows = rows
    result.import_stored = Reading.objects.filter(patient=patient, source="csv").count()
    result.import_alerts = Alert.objects.filter(patient=patient).count()
    if imported.created != rows:
        raise RuntimeError(f"imported {imported.created} of {rows}")


def _api_measure(result: VitalsResult, *, base_url: str, tokens: list[str], plan: VitalsPlan) -> None:
    from django.utils import timezone

    start = timezone.now() - timedelta(days=30)
    samples: list[float] = []
    statuses: dict[int, int] = {}
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as client:
        for index in range(plan.api_warmup + plan.api_posts):
            body = {
                "kind": "blood_pressure",
                "values": {"systolic": 118 + index % 30, "diastolic": 76 + index % 12, "pulse": 60 + index % 25},
                "measured_at": (start + timedelta(minutes=index)).isoformat(),
                "source": "device",
            }
            headers = {"Authorization": f"Bearer {tokens[index % len(tokens)]}"}
            started = time.perf_counter()
            response = client.post(API_PATH, json=body, headers=headers)
            elapsed = time.perf_counter() - started
            if index < plan.api_warmup:
                continue
            samples.append(elapsed)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    result.api_posts = len(samples)
    result.api_statuses = statuses
    result.api_p50_ms = percentile_ms(samples, 50)
    result.api_p95_ms = percentile_ms(samples, 95)


def _chart_measure(result: VitalsResult, *, base_url: str, patient: Any, plan: VitalsPlan) -> None:
    import json
    import zoneinfo

    from django.test import Client
    from django.utils import timezone

    from apps.vitals.csv_import import csv_parse
    from apps.vitals.import_services import readings_import

    zone = zoneinfo.ZoneInfo("Asia/Shanghai")
    parsed = csv_parse(data=daily_csv(plan.chart_days, now=timezone.now().astimezone(zone)), tz=zone)
    readings_import(by=patient, patient=patient, parsed=parsed)
    login = Client()
    login.force_login(patient)
    cookie = login.cookies["sessionid"].value
    samples: list[float] = []
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S, cookies={"sessionid": cookie}) as client:
        for index in range(plan.chart_requests + 3):
            started = time.perf_counter()
            response = client.get(CHART_PATH, headers={"Accept-Encoding": "gzip"})
            elapsed = time.perf_counter() - started
            response.raise_for_status()
            if index >= 3:
                samples.append(elapsed)
        raw = response.content  # httpx decodes the gzip
        result.chart_gzip_bytes = int(response.headers.get("content-length") or len(gzip.compress(raw)))
    body = json.loads(raw)
    [chart] = body["charts"]
    result.chart_days = chart["count"]
    result.chart_points = len(chart["t"])
    result.chart_bucket_days = chart["bucket_days"]
    result.chart_bytes = len(raw)
    result.chart_p50_ms = percentile_ms(samples, 50)
    result.chart_p95_ms = percentile_ms(samples, 95)


def vitals_run(plan: VitalsPlan) -> VitalsResult:
    """Sets Django up in this process: run it in a process of its own
    (``vitals_run_isolated``) beside other benchmarks."""
    result = VitalsResult(load_average=os.getloadavg()[0])
    started = time.perf_counter()
    with ExitStack() as stack:
        database_url, result.database = stack.enter_context(_database())
        var_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="telemed-bench-vitals-")))
        environment = _environment(var_dir=var_dir, database_url=database_url)
        try:
            manage_py_run("migrate", "--noinput", environment=environment)
            django_setup_here(environment)
            from apps.accounts.tokens import token_create

            _doctor, patients = _people(2 + API_CLIENTS)
            importer, charted, api_clients = patients[0], patients[1], patients[2:]
            _import_measure(result, patient=importer, rows=plan.import_rows)
            tokens = [token_create(user=patient, name="bench", expires_in_days=1)[1] for patient in api_clients]
            from django.db import connections

            connections.close_all()  # Daphne's turn; SQLite's writer lock is free
            with daphne_process(environment=environment, log_path=var_dir / "daphne.log") as server:
                base_url = server.base_url
                _api_measure(result, base_url=base_url, tokens=tokens, plan=plan)
                _chart_measure(result, base_url=base_url, patient=charted, plan=plan)
        except (ServerError, RuntimeError, httpx.HTTPError) as error:
            result.error = f"{error.__class__.__name__}: {error}"
        finally:
            from django.db import connections

            connections.close_all()  # before the database is dropped
    result.run_s = time.perf_counter() - started
    return result


def vitals_run_isolated(plan: VitalsPlan) -> VitalsResult:
    """``vitals_run`` in a child process (``python -m bench.vitals --child``),
    so that this process keeps its environment and no Django of its own."""
    try:
        figures = child_figures("bench.vitals", plan, timeout_s=CHILD_TIMEOUT_S)
    except RuntimeError as error:
        return VitalsResult(error=str(error))
    figures["api_statuses"] = {int(status): count for status, count in figures["api_statuses"].items()}
    return VitalsResult(**figures)


def vitals_markdown(result: VitalsResult) -> str:
    lines = [
        VITALS_HEADING,
        "",
        "Three of a patient's paths through the vitals app, on a fresh migrated database (PostgreSQL when "
        "reachable, else SQLite) with Telemed's settings in embedded mode otherwise. **Import**: a CSV of "
        f"{result.import_rows:,} readings of one patient over five years (five kinds, glucose in both units, "
        "decimal commas, a BOM) through `csv_parse`, `readings_import_preview` and `readings_import` (all or "
        "nothing, audited, flagged; the urgent ones open alerts), timed in the benchmark's process. **API**: "
        "`POST /api/v1/readings/` with one blood pressure each, token-authenticated, one after the other on one "
        "keep-alive connection to one Daphne process, five patients in turn (the API throttles each user to "
        "600 a minute); the round trip's p50/p95 after a warm-up. **Chart**: `GET /vitals/chart.json?period=all` "
        "for a patient with five years of daily blood pressures, as the browser asks for it (session cookie, "
        "gzip accepted), through the same Daphne. `python -m bench --only vitals` (or `python -m bench.vitals`) "
        "runs just this and rewrites this section.",
        "",
    ]
    if result.skipped is not None:
        lines.append(f"**Skipped**: {result.skipped}.")
        return "\n".join(lines)
    if result.error:
        lines.append(f"**Failed**: {result.error}")
        return "\n".join(lines)
    statuses = ", ".join(f"{status}: {count:,}" for status, count in sorted(result.api_statuses.items()))
    lines += [
        "| what | figure |",
        "|---|---|",
        f"| import of {result.import_rows:,} readings ({result.database}) | **{result.import_total_s:.1f} s**: "
        f"parse {result.import_parse_s:.2f} s, preview {result.import_preview_s:.2f} s, record "
        f"{result.import_record_s:.2f} s; {result.import_stored:,} stored, {result.import_alerts:,} alerts opened |",
        "| API single-reading POST through Daphne "
        f"| **p50 {result.api_p50_ms:.1f} ms, p95 {result.api_p95_ms:.1f} ms** "
        f"({result.api_posts:,} requests; {statuses}) |",
        f"| chart data, {result.chart_days:,} daily readings (five years) | **{result.chart_bytes / 1024:.1f} KB** "
        f"({result.chart_gzip_bytes / 1024:.1f} KB gzipped; {result.chart_points:,} points in "
        f"{result.chart_bucket_days}-day buckets), **p50 {result.chart_p50_ms:.1f} ms, "
        f"p95 {result.chart_p95_ms:.1f} ms** |",
        "",
        f"- Measured {result.measured_at} on {_machine()}; the run took {result.run_s:.0f} s with its set-up; "
        "the machine's load average over the minute before: "
        f"{'n/a' if result.load_average is None else f'{result.load_average:.2f}'} (other work shared its two "
        "cores, so the times are rough).",
    ]
    return "\n".join(lines)


def _machine() -> str:
    import platform

    return f"{platform.platform()}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}"


def vitals_summary_text(result: VitalsResult) -> str:
    if result.error:
        return f"vitals: failed — {result.error}"
    statuses = ", ".join(f"{status}: {count}" for status, count in sorted(result.api_statuses.items()))
    return "\n".join(
        [
            f"vitals ({result.database}):",
            f"  import of {result.import_rows} readings: {result.import_total_s:.1f} s "
            f"(parse {result.import_parse_s:.2f} s, preview {result.import_preview_s:.1f} s, "
            f"record {result.import_record_s:.1f} s; {result.import_stored} stored, {result.import_alerts} alerts)",
            f"  API single-reading POST through Daphne: p50 {result.api_p50_ms:.1f} ms, p95 {result.api_p95_ms:.1f} ms "
            f"({result.api_posts} requests; {statuses})",
            f"  chart of {result.chart_days} daily readings: {result.chart_points} points "
            f"({result.chart_bucket_days}-day buckets), {result.chart_bytes / 1024:.1f} KB "
            f"({result.chart_gzip_bytes / 1024:.1f} KB gzipped), p50 {result.chart_p50_ms:.1f} ms, "
            f"p95 {result.chart_p95_ms:.1f} ms",
            f"  {'passed' if result.passed else 'FAILED'}",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check that it runs")
    parser.add_argument("--child", metavar="PLAN_JSON", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        result = vitals_run(VitalsPlan(**json.loads(arguments.child)))
        print(json.dumps(dataclasses.asdict(result)))
        return 0
    result = vitals_run(SMOKE_VITALS if arguments.smoke else FULL_VITALS)
    print(vitals_summary_text(result))
    print(f"  (the run took {result.run_s:.0f} s; medians of noisy machines are rough)")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
