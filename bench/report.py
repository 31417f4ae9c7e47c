"""The results as Markdown for docs/benchmarks.md, and as a short summary for the terminal."""

from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass
from pathlib import Path

from bench.booking import BARE_API_PATH, BARE_PATH, BOOK_PATH, BookingResult, PhaseResult
from bench.http_load import ACCEPT_ENCODING, LoadResult
from bench.notifications import POLL_INTERVAL_S, SCAN_INTERVAL_S, WORKER_COUNT, DeliveryResult
from bench.page_weight import PAGE_BUDGET_BYTES, PageWeight
from bench.slots import SlotsResult

BENCHMARKS_DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
GENERATED_BEGIN = "<!-- bench:begin: written by `make bench`; edits between these two markers are overwritten -->"
GENERATED_END = "<!-- bench:end -->"
DOC_TITLE = "# Benchmarks"


@dataclass(frozen=True)
class RunInfo:
    measured_at: str
    platform: str
    cpu_count: int | None
    python_version: str
    browser: str
    generator: str
    clients: int
    warmup_s: float
    duration_s: float


def _bytes(count: int) -> str:
    return f"{count:,}"


def _ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1f}"


def _cores(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _errors(result: LoadResult) -> str:
    if not result.errors:
        return "0"
    kinds = ", ".join(f"{kind}: {count}" for kind, count in sorted(result.error_kinds.items()))
    return f"{result.errors} ({kinds})"


def _endpoint(result: LoadResult) -> str:
    who = "signed-in patient" if result.target.signed_in else "anonymous"
    return f"`{result.target.path}` ({who})"


def _page(weight: PageWeight) -> str:
    who = "signed-in patient" if weight.spec.signed_in else "anonymous"
    return f"`{weight.spec.path}` ({who})"


def _verdict(weight: PageWeight) -> str:
    if weight.verdict != "error":
        return weight.verdict
    return f"error (status {weight.document_status}, ended at `{weight.final_path}`)"


def intro_markdown(run: RunInfo) -> str:
    return (
        "How fast one Daphne process serves patient pages, how many bytes a patient's phone downloads "
        "to open each of them, how fast two Celery workers deliver a backlog of SMS notifications, how long "
        "the patient's doctor search takes, how many bookings the API takes under contention, how fast consult "
        "signaling is relayed with 400 sockets open, how long a call takes to set up in Chromium, how long the "
        "ECG analysis takes (record 100 and a 24 h recording) and how fast the vitals CSV import, readings API "
        "and chart data are. "
        "`make bench` (`.venv/bin/python -m bench`, a few minutes) starts Telemed in "
        "embedded mode in a fresh temporary directory (SQLite, in-memory channel layer, the `seed_demo` data, "
        "collected static files, no Celery worker), serves it with one Daphne process on 127.0.0.1, measures "
        "and stops it; then runs the notification, slot search, booking and signaling benchmarks on PostgreSQL "
        "and Redis, the call set-up in Chromium, the ECG analysis and the vitals benchmark (below), and rewrites "
        "this section; `python -m bench --smoke` "
        "is a short check of the same steps "
        "that writes nothing. "
        f"Last run {run.measured_at} on {run.platform}, {run.cpu_count} logical CPUs, "
        f"Python {run.python_version}, {run.browser}. "
        "Figures from different machines don't compare; runs on the same machine do."
    )


def throughput_markdown(results: list[LoadResult], run: RunInfo) -> str:
    lines = [
        "## Throughput",
        "",
        f"{run.clients} concurrent clients, each on one keep-alive connection, request a page as fast as it "
        f"answers for {run.duration_s:g} s after a {run.warmup_s:g} s warm-up; a request counts when it "
        "completes inside the measured window, and any answer outside 2xx is an error. The load generator runs "
        "on the same machine and takes CPU from the server.",
        "",
        "| endpoint | clients | duration | requests | rps | p50 ms | p95 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {_endpoint(result)} | {result.clients} | {result.duration_s:.1f} s | {result.requests:,} "
        f"| {result.requests_per_s:.1f} | {_ms(result.p50_ms)} | {_ms(result.p95_ms)} | {_errors(result)} |"
        for result in results
    ]
    lines += [
        "",
        f"Load generator: {run.generator}, requests sent with `Accept-Encoding: {ACCEPT_ENCODING}`. "
        "CPU used during the measured window, in cores (1.00 = one core busy the whole time):",
        "",
    ]
    lines += [
        f"- {_endpoint(result)}: Daphne {_cores(result.server_cpu_cores)}, "
        f"load generator {_cores(result.generator_cpu_cores)}"
        for result in results
    ]
    return "\n".join(lines)


def page_weight_markdown(weights: list[PageWeight]) -> str:
    lines = [
        "## Page weight (first load, empty cache)",
        "",
        "Each page is opened in a fresh Chromium context (empty cache, 360 px wide, `zh-CN`), signed in as "
        "the demo patient where the page needs it. Its weight is the sum, over every request of the load "
        "(document, stylesheets, scripts, images, icon), of the bytes received as served: headers plus the "
        "compressed body (`encodedDataLength` of the DevTools `Network.loadingFinished` event). The budget is "
        f"{_bytes(PAGE_BUDGET_BYTES)} bytes (100 KB) per page, for patients on 2G/3G.",
        "",
        "| page | requests | bytes | budget | verdict |",
        "|---|---:|---:|---:|---|",
    ]
    lines += [
        f"| {_page(weight)} | {len(weight.assets)} | {_bytes(weight.total_bytes)} "
        f"| {_bytes(weight.budget_bytes)} | {_verdict(weight)} |"
        for weight in weights
    ]
    assets = [asset for weight in weights for asset in weight.assets]
    accepted = sorted({asset.accept_encoding for asset in assets if asset.accept_encoding})
    served = sorted({asset.content_encoding for asset in assets if asset.content_encoding})
    if accepted:
        lines += [
            "",
            "The browser sent `Accept-Encoding: " + "` / `".join(accepted) + "`; "
            "the app answered with " + (", ".join(f"`{encoding}`" for encoding in served) or "no compression") + ".",
        ]
    lines += [
        "",
        "### Per request",
        "",
        "Bytes on the wire are headers plus the body as served; body bytes are after decompression.",
        "",
        "| page | request | type | status | encoding | bytes on the wire | body bytes |",
        "|---|---|---|---:|---|---:|---:|",
    ]
    for weight in weights:
        first_row = True
        for asset in weight.assets:
            status = asset.failed or str(asset.status)
            lines.append(
                f"| {_page(weight) if first_row else ''} | `{asset.label}` | {asset.resource_type} | {status} "
                f"| {asset.content_encoding or '—'} | {_bytes(asset.wire_bytes)} | {_bytes(asset.body_bytes)} |"
            )
            first_row = False
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.1f} s"


def _rate(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1f}"


def delivery_verdict(result: DeliveryResult) -> str:
    if result.skipped is not None:
        return f"skipped: {result.skipped}"
    if result.passed:
        return "pass: every notification sent, each message accepted once, no duplicate request"
    problems = []
    if result.error:
        problems.append(result.error)
    if result.not_sent:
        problems.append(f"{result.not_sent:,} not sent")
    if result.accepted != result.count:
        problems.append(f"the gateway accepted {result.accepted:,} of {result.count:,}")
    if result.duplicate_requests or result.keys_accepted_more_than_once or result.numbers_accepted_more_than_once:
        problems.append(
            f"duplicates: {result.duplicate_requests} repeated request(s), "
            f"{result.keys_accepted_more_than_once} key(s) and "
            f"{result.numbers_accepted_more_than_once} number(s) accepted more than once"
        )
    return "FAIL: " + "; ".join(problems)


def _task_results(results: dict[str, int]) -> str:
    return ", ".join(f"{outcome} {count:,}" for outcome, count in sorted(results.items())) or "none logged"


def delivery_markdown(result: DeliveryResult) -> str:
    lines = [
        "## Notification delivery (SMS outbox, two Celery workers)",
        "",
        f"{result.count:,} due SMS notifications delivered by {WORKER_COUNT} Celery worker processes "
        "(`celery -A telemed worker --pool=prefork --concurrency=1 --loglevel=INFO --without-gossip "
        "--without-mingle`, one pool child each) to a local SMS gateway (`tests.notifications.servers.SmsGateway`, "
        "a threaded HTTP server in the bench process that answers at once and dedups on the `Idempotency-Key` "
        "header), on PostgreSQL and Redis as in production. `python -m bench --only notifications` runs just "
        "this (about four minutes); `--smoke` delivers 200.",
        "",
        "Set-up, not timed: a fresh PostgreSQL database (`telemed_bench_<pid>`, migrated, dropped afterwards), "
        "a dedicated Redis database (flushed before and after), and one patient per notification, each with "
        "its own phone number and one `sms` notification (`account/welcome`, English), pending, due now, never "
        "enqueued. The rows are bulk-created straight into the tables (`python -m bench.notifications_child "
        "seed`), not through `notification_send`: the figure is delivery alone.",
        "",
        f"Timed: a scanner process runs beat's scan, `notifications_enqueue_due` (at most 2,000 rows a call), "
        f"every {SCAN_INTERVAL_S:g} s, and the workers run `notification_deliver_task` for each queued row. The "
        "clock starts when the scanner starts and stops at the last row's `sent_at` (the rows are counted by "
        f"SQL every {POLL_INTERVAL_S:g} s). In production beat sends that scan every "
        "`NOTIFICATIONS_SCAN_INTERVAL_S` (10 s by default) to a worker, so a backlog is enqueued at most 2,000 "
        "rows per interval. A duplicate is a request repeating an `Idempotency-Key` the gateway had already "
        "accepted; there must be none, and no message accepted more than once.",
        "",
    ]
    if result.skipped is not None:
        lines.append(
            f"**Skipped**: {result.skipped}. The benchmark needs PostgreSQL and Redis on 127.0.0.1 "
            "(or `BENCH_POSTGRES_URL` / `BENCH_REDIS_URL`); the other benchmarks ran without it."
        )
        return "\n".join(lines)
    lines += [
        "| notifications | workers | time until all sent | messages/s | accepted by the gateway | requests "
        "| duplicate requests | accepted more than once | not sent |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {result.count:,} | {result.workers_started} | {_seconds(result.elapsed_s)} "
        f"| {_rate(result.messages_per_s)} | {result.accepted:,} | {result.requests:,} "
        f"| {result.duplicate_requests:,} | {result.keys_accepted_more_than_once:,} | {result.not_sent:,} |",
        "",
        f"Verdict: {delivery_verdict(result)}.",
        "",
    ]
    statuses = ", ".join(f"{status} {count:,}" for status, count in sorted(result.status_counts.items()))
    lines += [
        f"- Rows at the end: {statuses or 'none'}; gateway answers other than 200: {result.refused_requests:,}; "
        f"phone numbers that got more than one message: {result.numbers_accepted_more_than_once:,}.",
        f"- First message accepted by the gateway after {_seconds(result.first_accepted_s)}; every row "
        f"enqueued once after {_seconds(result.all_enqueued_s)}; {result.scans} scans enqueued "
        f"{result.rows_enqueued:,} rows in all (more than {result.count:,} means rows were enqueued again, "
        "and tasks that find their row already sent return `skipped`); "
        f"the longest scan that enqueued rows took {_seconds(result.longest_scan_s)}.",
    ]
    lines += [
        f"- {worker.name}: tasks run in the timed window {_task_results(worker.task_results)}; mean task run time "
        f"{'n/a' if worker.mean_task_ms is None else f'{worker.mean_task_ms:.1f} ms'} (from the worker's log); "
        f"CPU {_cores(worker.cpu_cores)} cores (main process and pool child)"
        for worker in result.workers
    ]
    overrides = ", ".join(f"`{name}={value}`" for name, value in result.settings_overrides)
    lines += [
        "- Telemed settings: the defaults (`DB_CONN_MAX_AGE=0`, `NOTIFICATIONS_LEASE_S=120`, `LOG_LEVEL=INFO`)"
        + (f", except {overrides}" if overrides else "")
        + "; `SMS_BACKEND=http` pointed at the gateway; `DATABASE_URL`, `REDIS_URL` as above; no `SECRET_KEY` "
        "(embedded mode's other defaults, `DEBUG` off).",
        f"- CPU in cores during the timed window (1.00 = one core busy the whole time): scanner "
        f"{_cores(result.scanner_cpu_cores)}, bench process with the gateway {_cores(result.gateway_cpu_cores)}, "
        f"PostgreSQL and Redis {_cores(result.services_cpu_cores)} (all their processes, other databases' "
        f"work included); whole machine {_cores(result.machine_busy_cores)} of {os.cpu_count()} logical CPUs, "
        f"of which processes unrelated to the benchmark {_cores(result.others_cpu_cores)}; stolen by the "
        f"hypervisor (steal time) {_cores(result.machine_stolen_cores)}.",
    ]
    if result.database_sessions is not None and result.database_active_cores is not None:
        lines.append(
            f"- PostgreSQL (`pg_stat_database`, the run's database): {result.database_sessions:,} connections "
            f"opened during the timed window; statements executing {result.database_active_cores:.2f} of the "
            "time on average (1.00 = one statement running at every moment)."
        )
    lines += [
        f"- Set-up, not timed: {_seconds(result.setup_s)} (migrate, bulk-create in {_seconds(result.seed_s)}, "
        "start the workers).",
    ]
    return "\n".join(lines)


SLOTS_HEADING = "## Slot search (a patient finds a doctor)"
BOOKING_HEADING = "## Booking under contention (API, PostgreSQL)"


def _machine() -> str:
    return f"{platform.platform()}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}"


def slots_markdown(result: SlotsResult) -> str:
    lines = [
        SLOTS_HEADING,
        "",
        'The patient\'s "find a doctor" page (`/appointments/find/`, no filter): every doctor of the network at '
        "each clinic they practise at, with their earliest free slot over the next 14 days, earliest first. "
        "A child process (`python -m bench.scheduling_child slots`) runs against a fresh, migrated PostgreSQL "
        "database with collected static files. It seeds five clinics (four in `Asia/Shanghai`, one in "
        "`Asia/Urumqi`) and doctors with weekly hours (weekday mornings for all, some afternoons and Saturdays, "
        "every fourth doctor also at a second clinic), 30% of their slots over the 14 days booked, completed "
        "appointments over the past 60 days, and three days off for every fifth doctor; then it counts the page's "
        "queries and times it, adds doctors, and does it again. Server time is measured in-process through "
        "`django.test.Client` (`Accept-Encoding: gzip, deflate`), signed in as a patient: the whole middleware "
        "stack, the view, its queries and the template, without network or ASGI server. "
        "`python -m bench --only slots` runs just this and rewrites this section.",
        "",
    ]
    if result.skipped is not None:
        lines.append(f"**Skipped**: {result.skipped}.")
        return "\n".join(lines)
    if result.error is not None:
        lines.append(f"**Failed**: {result.error}")
        return "\n".join(lines)
    lines += [
        "| doctors | (doctor, clinic) pairs listed | appointments (upcoming) | queries | requests | p50 ms "
        "| p95 ms | mean ms | CPU ms (mean) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {step.doctors} | {step.pairs} | {step.appointments:,} ({step.upcoming_appointments:,}) | {step.queries} "
        f"| {step.requests} | {_ms(step.p50_ms)} | {_ms(step.p95_ms)} | {_ms(step.mean_ms)} | {_ms(step.cpu_mean_ms)} |"
        for step in result.steps
    ]
    counts = " and ".join(f"{step.queries} at {step.doctors} doctors" for step in result.steps)
    verdict = "the same" if result.constant_queries else "**not the same**"
    lines += [
        "",
        f"Queries per page: {counts}: {verdict} whatever the number of doctors and appointments (at this "
        "writing: the session and the user, the patient's role (two), the doctors' clinics and profiles and their "
        "specialties (two), four for the slots of all of them (rules, booking policies, time off, appointments), "
        "the unread-notification count of the navigation, and the two lists of the filter form).",
    ]
    pages = [("one doctor's week (`/appointments/doctors/<id>/clinics/<id>/`)", result.week_page)]
    pages.append(("API: a doctor's slots for 7 days (`/api/v1/doctors/<id>/slots/`)", result.api_slots))
    lines += [
        "",
        f"At {result.steps[-1].doctors} doctors, pages of one doctor at a time (a random one per request):",
        "",
        "| page | queries | requests | p50 ms | p95 ms | mean ms | CPU ms (mean) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {label} | {timing.queries} | {timing.requests} | {_ms(timing.p50_ms)} | {_ms(timing.p95_ms)} "
        f"| {_ms(timing.mean_ms)} | {_ms(timing.cpu_mean_ms)} |"
        for label, timing in pages
        if timing is not None
    ]
    lines += [
        "",
        "CPU ms is the process's CPU time per request (`time.process_time`), which other work on the machine "
        "inflates less than the wall-clock times; the machine's load average was "
        f"{_load(result.load_average)} when the measurement began. "
        f"Measured {result.measured_at} on {_machine()}.",
    ]
    return "\n".join(lines)


def _load(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _outcomes(phase: PhaseResult) -> str:
    return ", ".join(f"{outcome}: {count:,}" for outcome, count in sorted(phase.outcomes.items())) or "none"


def _phase_row(phase: PhaseResult) -> str:
    return (
        f"| `POST {phase.path}` ({phase.label}) | {phase.clients} | {phase.duration_s:g} s | {phase.requests:,} "
        f"| {_rate(phase.requests_per_s)} | {_rate(phase.created_per_s)} | {_ms(phase.p50_ms)} | {_ms(phase.p95_ms)} "
        f"| {_ms(phase.created_p95_ms)} | {_ms(phase.server_cpu_ms_per_request)} | {_outcomes(phase)} |"
    )


def booking_verdict(result: BookingResult) -> str:
    if result.skipped is not None:
        return f"skipped: {result.skipped}"
    if result.passed:
        return "pass: no double booking, every answer 201 or 409, one row per 201"
    problems = []
    if result.error:
        problems.append(result.error)
    if result.doctor_overlaps or result.patient_overlaps:
        problems.append(
            f"double bookings: {result.doctor_overlaps} of a doctor, {result.patient_overlaps} of a patient"
        )
    for phase in result.phases:
        if phase.unexpected:
            problems.append(f"{phase.unexpected:,} answers other than 201/409 from `{phase.path}`")
    if result.booking is not None and result.appointments_created != result.booking.created_in_all:
        problems.append(f"{result.appointments_created} appointments for {result.booking.created_in_all} answers 201")
    if result.bare_api is not None and result.bare_api_rows != result.bare_api.created_in_all:
        problems.append(f"{result.bare_api_rows} bare API rows for {result.bare_api.created_in_all} answers 201")
    if result.bare is not None and result.bare_rows != result.bare.created_in_all:
        problems.append(f"{result.bare_rows} bare rows for {result.bare.created_in_all} answers 201")
    return "FAIL: " + "; ".join(problems)


def booking_markdown(result: BookingResult) -> str:
    plan = result.plan
    lines = [
        BOOKING_HEADING,
        "",
        f"{plan.clients} concurrent API clients, each on its own keep-alive connection (httpx, asyncio, in the "
        f"bench process on the same machine), send one request after another to one Daphne process for "
        f"{plan.duration_s:g} s after a {plan.warmup_s:g} s warm-up, three times over: first `POST {BOOK_PATH}` "
        "for a slot drawn at random from every free slot of the next 14 days as listed before the run (a stale "
        "view of the schedule, so a slot someone took answers 409 `slot_taken`), each request by the client's "
        f"next patient in turn ({plan.patients_per_client} patients per client, each with consent and a personal "
        "access token); then the two bare endpoints of the same server (`bench.settings`, `bench.urls`), which "
        "insert one row with one SQL statement and answer 201:",
        "",
        f"- `POST {BARE_API_PATH}` (**bare API insert**, the baseline of the goal): a DRF view with the API's "
        "defaults, exactly as the booking endpoint has them: the same patients' personal access tokens (one "
        "lookup, the same `last_used_at` rule), `IsAuthenticated`, the user throttle in Redis, JSON parsing and "
        "a serializer's validation, a JSON answer. What the booking costs beyond it is the booking's own work: "
        "the patient check, the doctor and clinic, `appointment_book`'s checks, the insert under the exclusion "
        "constraints, the audit event and the broker message that has a worker write its notices.",
        f"- `POST {BARE_PATH}` (**bare insert, plain view**): a plain Django view (`json.loads`, no "
        "authentication, no throttle, no DRF), the cheapest useful write through the server and its middleware; "
        "shown as a second reference.",
        "",
        "Telemed runs with `DATABASE_URL` (a fresh, migrated database) and `REDIS_URL` set, no `SECRET_KEY` "
        "(embedded mode's other defaults, `DEBUG` off, `DB_CONN_MAX_AGE=0`: each request opens its own database "
        f"connection, for all three endpoints alike); {plan.doctors} doctors at five clinics ({result.pairs} "
        f"doctor-clinic pairs, 30% of their slots already booked, {result.slot_pool:,} free slots to draw from). "
        "A request counts when it completes inside the measured window. `python -m bench --only booking` runs "
        "just this and rewrites this section (`--duration 10` for a quick comparison that writes nothing).",
        "",
    ]
    if result.skipped is not None:
        lines.append(
            f"**Skipped**: {result.skipped}. The benchmark needs PostgreSQL and Redis on 127.0.0.1 "
            "(or `BENCH_POSTGRES_URL` / `BENCH_REDIS_URL`)."
        )
        return "\n".join(lines)
    if result.booking is None or result.bare_api is None or result.bare is None:
        lines.append(f"**Failed**: {result.error}")
        return "\n".join(lines)
    lines += [
        "| endpoint | clients | duration | requests | requests/s | 201/s | p50 ms | p95 ms | p95 ms of 201s "
        "| Daphne CPU ms per request | answers |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        *(_phase_row(phase) for phase in result.phases),
        "",
        f"Booking requests answered per second ÷ bare API inserts per second: **{result.ratio:.2f}** (goal: at "
        f"least 0.5; bookings made (201) per second ÷ bare API inserts: {result.created_ratio:.2f}). Against the "
        f"plain-view insert: {result.plain_ratio:.2f} (201s: {result.plain_created_ratio:.2f}). One Daphne process "
        "runs Python on one core at a time, so its CPU time per request bounds its rate.",
        "",
        f"Verdict: {booking_verdict(result)}.",
        "",
        f"- Double bookings, by SQL after the run (pairs of active appointments that overlap): "
        f"{result.doctor_overlaps} of one doctor, {result.patient_overlaps} of one patient. PostgreSQL's "
        "exclusion constraints make them impossible; the count checks it.",
        f"- Rows: {result.appointments_created:,} appointments created for {result.booking.created_in_all:,} "
        f"answers 201, {result.bare_api_rows:,} bare API rows for {result.bare_api.created_in_all:,}, "
        f"{result.bare_rows:,} plain-view rows for {result.bare.created_in_all:,} (warm-up included).",
    ]
    lines += [
        f"- CPU in cores during the window (1.00 = one core busy the whole time), `{phase.path}`: Daphne "
        f"{_cores(phase.server_cpu_cores)}, load generator {_cores(phase.generator_cpu_cores)}, PostgreSQL and "
        f"Redis {_cores(phase.services_cpu_cores)} (all their processes, other databases' work included); whole "
        f"machine {_cores(phase.machine_busy_cores)} of {os.cpu_count()} logical CPUs, of which processes "
        f"unrelated to the benchmark {_cores(phase.others_cpu_cores)}."
        for phase in result.phases
    ]
    lines += [
        f"- Set-up, not timed: {_seconds(result.setup_s)} (migrate, seed, start Daphne); the machine's load "
        f"average was {_load(result.load_average)} when the booking phase began.",
        "",
        f"Measured {result.measured_at} on {_machine()}.",
    ]
    return "\n".join(lines)


def generated_markdown(
    *,
    run: RunInfo,
    load_results: list[LoadResult],
    weights: list[PageWeight],
    delivery: DeliveryResult | None = None,
    slots: SlotsResult | None = None,
    booking: BookingResult | None = None,
) -> str:
    sections = [intro_markdown(run), throughput_markdown(load_results, run), page_weight_markdown(weights)]
    if delivery is not None:
        sections.append(delivery_markdown(delivery))
    if slots is not None:
        sections.append(slots_markdown(slots))
    if booking is not None:
        sections.append(booking_markdown(booking))
    return "\n\n".join(sections)


def benchmarks_doc_section_write(section: str, *, path: Path = BENCHMARKS_DOC) -> None:
    """Replace the ``## `` section of the generated text that has the same
    heading line as ``section``, or add it at the end of the generated text;
    the other sections stay as they are."""
    heading = section.split("\n", 1)[0]
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    begin, end = text.find(GENERATED_BEGIN), text.find(GENERATED_END)
    if begin == -1 or end < begin:
        benchmarks_doc_write(section, path=path)
        return
    parts = _sections(text[begin + len(GENERATED_BEGIN) : end])
    headings = [part.split("\n", 1)[0] for part in parts]
    if heading in headings:
        parts[headings.index(heading)] = section
    else:
        parts.append(section)
    benchmarks_doc_write("\n\n".join(parts), path=path)


def _sections(generated: str) -> list[str]:
    """The generated text cut before each ``## `` heading (the intro first)."""
    chunks: list[list[str]] = [[]]
    for line in generated.split("\n"):
        if line.startswith("## "):
            chunks.append([])
        chunks[-1].append(line)
    return [joined for chunk in chunks if (joined := "\n".join(chunk).strip("\n"))]


def benchmarks_doc_write(generated: str, *, path: Path = BENCHMARKS_DOC) -> None:
    """Replace the text between the markers, keeping what surrounds them;
    a file without markers gets the section appended, a missing one is created."""
    block = f"{GENERATED_BEGIN}\n{generated}\n{GENERATED_END}\n"
    if not path.exists():
        path.write_text(f"{DOC_TITLE}\n\n{block}", encoding="utf-8")
        return
    text = path.read_text(encoding="utf-8")
    begin, end = text.find(GENERATED_BEGIN), text.find(GENERATED_END)
    if begin == -1 or end < begin:
        path.write_text(text.rstrip("\n") + "\n\n" + block, encoding="utf-8")
        return
    after = text[end + len(GENERATED_END) :].lstrip("\n")
    path.write_text(text[:begin] + block + (f"\n{after}" if after else ""), encoding="utf-8")


def delivery_summary_text(result: DeliveryResult) -> str:
    if result.skipped is not None:
        return f"Notification delivery: skipped ({result.skipped})"
    workers = ", ".join(f"{_cores(worker.cpu_cores)}" for worker in result.workers) or "n/a"
    return (
        f"Notification delivery ({result.count:,} SMS, {result.workers_started} workers):\n"
        f"  {_seconds(result.elapsed_s)} until all sent, {_rate(result.messages_per_s)} messages/s; gateway: "
        f"{result.accepted:,} accepted, {result.requests:,} requests, {result.duplicate_requests} duplicate(s), "
        f"{result.keys_accepted_more_than_once} accepted more than once; {result.not_sent:,} not sent  "
        f"(cores: workers {workers}, PostgreSQL and Redis {_cores(result.services_cpu_cores)}, "
        f"machine {_cores(result.machine_busy_cores)}, stolen {_cores(result.machine_stolen_cores)})\n"
        f"  scans: {result.scans}, rows enqueued {result.rows_enqueued:,}; "
        f"PostgreSQL connections opened: {'n/a' if result.database_sessions is None else result.database_sessions}; "
        "tasks: " + "; ".join(f"{worker.name} {_task_results(worker.task_results)}" for worker in result.workers) + "\n"
        f"  {delivery_verdict(result)}"
    )


def summary_text(*, run: RunInfo, load_results: list[LoadResult], weights: list[PageWeight]) -> str:
    lines = [f"Throughput ({run.generator}, {run.clients} clients):"]
    lines += [
        f"  {result.target.label:<22} {result.requests_per_s:8.1f} rps  p50 {_ms(result.p50_ms):>7} ms  "
        f"p95 {_ms(result.p95_ms):>7} ms  {result.requests:>7,} requests  errors {_errors(result)}  "
        f"(cores: server {_cores(result.server_cpu_cores)}, generator {_cores(result.generator_cpu_cores)})"
        for result in load_results
    ]
    lines.append(f"Page weight ({run.browser}, budget {_bytes(weights[0].budget_bytes) if weights else '-'} bytes):")
    lines += [
        f"  {weight.spec.path:<22} {_bytes(weight.total_bytes):>9} bytes in {len(weight.assets)} requests  "
        f"{_verdict(weight)}"
        for weight in weights
    ]
    return "\n".join(lines)


def slots_summary_text(result: SlotsResult) -> str:
    if result.skipped is not None:
        return f"Slot search: skipped ({result.skipped})"
    if result.error is not None:
        return f"Slot search: FAILED: {result.error}"
    lines = ["Slot search (find page, in-process, 14 days):"]
    lines += [
        f"  {step.doctors:>3} doctors ({step.pairs} pairs, {step.appointments:,} appointments): "
        f"{step.queries} queries, p50 {_ms(step.p50_ms)} ms, p95 {_ms(step.p95_ms)} ms over {step.requests} requests"
        for step in result.steps
    ]
    for label, timing in (("week page", result.week_page), ("API slots", result.api_slots)):
        if timing is not None:
            lines.append(
                f"  {label}: {timing.queries} queries, p50 {_ms(timing.p50_ms)} ms, p95 {_ms(timing.p95_ms)} ms"
            )
    lines.append("  queries: " + ("constant" if result.constant_queries else "NOT constant"))
    return "\n".join(lines)


def booking_summary_text(result: BookingResult) -> str:
    if result.skipped is not None:
        return f"Booking under contention: skipped ({result.skipped})"
    lines = [f"Booking under contention ({result.plan.clients} clients, {result.slot_pool:,} free slots):"]
    for phase in result.phases:
        if phase is not None:
            lines.append(
                f"  {phase.label:<15} {_rate(phase.requests_per_s):>7} requests/s  {_rate(phase.created_per_s):>7} "
                f"201/s  p50 {_ms(phase.p50_ms)} ms  p95 {_ms(phase.p95_ms)} ms  ({_outcomes(phase)}; cores: "
                f"Daphne {_cores(phase.server_cpu_cores)}, generator {_cores(phase.generator_cpu_cores)}, "
                f"PostgreSQL and Redis {_cores(phase.services_cpu_cores)}, unrelated processes "
                f"{_cores(phase.others_cpu_cores)}, machine {_cores(phase.machine_busy_cores)})"
            )
    lines.append(
        f"  ratio booking/bare API insert: {result.ratio:.2f} (201s: {result.created_ratio:.2f}); goal 0.5; "
        f"booking/plain-view insert: {result.plain_ratio:.2f} (201s: {result.plain_created_ratio:.2f})"
    )
    if result.phases:
        lines.append(
            "  Daphne CPU per request: "
            + ", ".join(f"{phase.label} {_ms(phase.server_cpu_ms_per_request)} ms" for phase in result.phases)
        )
    lines.append(f"  double bookings: doctor {result.doctor_overlaps}, patient {result.patient_overlaps}")
    lines.append(f"  {booking_verdict(result)}")
    return "\n".join(lines)
