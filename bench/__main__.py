"""``python -m bench``: run the benchmarks and write docs/benchmarks.md.

Exit status 0 when every figure was measured (a page over its budget,
booking slower than half the bare insert, or a call set-up over 3x its
floor, is a finding in the report, not a failure of the run; so is a
benchmark skipped for want of PostgreSQL, Redis or Chromium, which the
report says); 1 when a request failed, a page did not load, the app could
not start, the notification benchmark failed (a notification not sent in
time, a duplicate), the slot search's query count grew with the number of
doctors, the booking benchmark failed (a double booking, an answer other
than 201 or 409), the signaling benchmark failed (an error message, a
socket closed by the server, a message not relayed, a chat message not
stored), a call did not connect, the ECG analysis failed (a file refused,
its child died, record 100's beats not found), the vitals benchmark
failed (an import not stored whole, an API answer other than 201, no chart)
or the doctor workspace's did (a page answered other than 200; a chart not
built yet, 404, is reported, not a failure).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import signal
import sys
from dataclasses import dataclass
from types import FrameType

from bench.booking import FULL_BOOKING, SMOKE_BOOKING, BookingPlan, BookingResult, booking_run
from bench.call_setup import (
    FULL_CALL_SETUP,
    SMOKE_CALL_SETUP,
    CallSetupPlan,
    CallSetupResult,
    call_setup_markdown,
    call_setup_run,
    call_setup_summary_text,
)
from bench.care import FULL_CARE, SMOKE_CARE, CarePlan, CareResult, care_markdown, care_run_isolated, care_summary_text
from bench.ecg import FULL_ECG, SMOKE_ECG, EcgPlan, EcgResult, ecg_markdown, ecg_run, ecg_summary_text
from bench.http_load import LoadResult, LoadTarget, generator_name, load_run
from bench.notifications import FULL_DELIVERY, SMOKE_DELIVERY, DeliveryPlan, DeliveryResult, delivery_run
from bench.page_weight import PATIENT_PAGES, PageSpec, PageWeight, page_weights_measure
from bench.report import (
    BENCHMARKS_DOC,
    RunInfo,
    benchmarks_doc_section_write,
    benchmarks_doc_write,
    booking_markdown,
    booking_summary_text,
    delivery_summary_text,
    generated_markdown,
    slots_markdown,
    slots_summary_text,
    summary_text,
)
from bench.server import ServerError, embedded_server
from bench.sign_in import HOME_PATH, LOGIN_PATH, SignInError, patient_sign_in
from bench.signaling import (
    FULL_SIGNALING,
    SMOKE_SIGNALING,
    SignalingPlan,
    SignalingResult,
    signaling_markdown,
    signaling_run,
    signaling_summary_text,
)
from bench.slots import FULL_SLOTS, SMOKE_SLOTS, SlotsPlan, SlotsResult, slots_run
from bench.vitals import (
    FULL_VITALS,
    SMOKE_VITALS,
    VitalsPlan,
    VitalsResult,
    vitals_markdown,
    vitals_run_isolated,
    vitals_summary_text,
)


@dataclass(frozen=True)
class BenchPlan:
    clients: int
    warmup_s: float
    duration_s: float
    pages: list[PageSpec]
    delivery: DeliveryPlan
    slots: SlotsPlan
    booking: BookingPlan
    signaling: SignalingPlan
    call_setup: CallSetupPlan
    ecg: EcgPlan
    vitals: VitalsPlan
    care: CarePlan
    writes_doc: bool


FULL_PLAN = BenchPlan(
    clients=16,
    warmup_s=2.0,
    duration_s=10.0,
    pages=PATIENT_PAGES,
    delivery=FULL_DELIVERY,
    slots=FULL_SLOTS,
    booking=FULL_BOOKING,
    signaling=FULL_SIGNALING,
    call_setup=FULL_CALL_SETUP,
    ecg=FULL_ECG,
    vitals=FULL_VITALS,
    care=FULL_CARE,
    writes_doc=True,
)
SMOKE_PLAN = BenchPlan(
    clients=16,
    warmup_s=0.5,
    duration_s=1.5,
    pages=PATIENT_PAGES[:1],
    delivery=SMOKE_DELIVERY,
    slots=SMOKE_SLOTS,
    booking=SMOKE_BOOKING,
    signaling=SMOKE_SIGNALING,
    call_setup=SMOKE_CALL_SETUP,
    ecg=SMOKE_ECG,
    vitals=SMOKE_VITALS,
    care=SMOKE_CARE,
    writes_doc=False,
)


def arguments_parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a few seconds per endpoint, one page, 200 notifications, a few doctors, to check the harness works; "
        "writes nothing",
    )
    parser.add_argument(
        "--only",
        choices=["http", "notifications", "slots", "booking", "signaling", "call-setup", "ecg", "vitals", "care"],
        help="run only the HTTP benchmarks (throughput, page weight), the notification delivery, the slot search, "
        "the booking under contention, the consult signaling, the call set-up in Chromium, the ECG analysis "
        "(record 100 and a 24 h recording), the vitals import, API and chart, or the doctor workspace's pages "
        "with 1,000,000 readings; http and "
        "notifications write nothing, the others rewrite their own section of docs/benchmarks.md (not with --smoke)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="the booking benchmark's measured time per endpoint (for quick comparisons); writes nothing",
    )
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a Telemed setting for the notification workers and scanner (repeatable), to compare a change "
        "with the defaults; writes nothing",
    )
    return parser.parse_args(argv)


def settings_overrides_parse(values: list[str]) -> tuple[tuple[str, str], ...]:
    overrides = []
    for value in values:
        name, separator, setting = value.partition("=")
        if not separator or not name:
            raise SystemExit(f"python -m bench: --worker-env wants NAME=VALUE, got {value!r}")
        overrides.append((name, setting))
    return tuple(overrides)


def stop_on_sigterm(signal_number: int, frame: FrameType | None) -> None:
    """SIGTERM unwinds like Ctrl-C, so the server is stopped on the way out."""
    raise SystemExit(128 + signal_number)


def delivery_bench_run(plan: BenchPlan) -> DeliveryResult:
    print(
        f"Delivering {plan.delivery.count:,} SMS notifications with two Celery workers (PostgreSQL, Redis):",
        flush=True,
    )
    return delivery_run(plan.delivery)


def slots_bench_run(plan: BenchPlan) -> SlotsResult:
    doctors = " then ".join(str(count) for count in plan.slots.steps)
    print(f"Timing the slot search with {doctors} doctors (PostgreSQL):", flush=True)
    return slots_run(plan.slots)


def booking_bench_run(plan: BenchPlan) -> BookingResult:
    print(f"Booking with {plan.booking.clients} concurrent API clients (Daphne, PostgreSQL, Redis):", flush=True)
    return booking_run(plan.booking)


def signaling_bench_run(plan: BenchPlan) -> SignalingResult:
    print(
        f"Consult signaling with {plan.signaling.rooms} rooms ({2 * plan.signaling.rooms} WebSocket clients; "
        "Daphne, PostgreSQL, Redis):",
        flush=True,
    )
    return signaling_run(plan.signaling)


def call_setup_bench_run(plan: BenchPlan) -> CallSetupResult:
    print(
        f"Call set-up in Chromium: {plan.call_setup.calls} calls through the app beside the floor "
        "(embedded mode, Chromium):",
        flush=True,
    )
    return call_setup_run(plan.call_setup)


def ecg_bench_run(plan: BenchPlan) -> EcgResult:
    hours = f" and a {plan.ecg.hours:g} h two-lead recording" if plan.ecg.hours else ""
    print(f"ECG analysis of MIT-BIH record 100{hours}:", flush=True)
    return ecg_run(plan.ecg)


def vitals_bench_run(plan: BenchPlan) -> VitalsResult:
    print(
        f"Vitals: a CSV import of {plan.vitals.import_rows:,} readings, {plan.vitals.api_posts} API POSTs, "
        f"the chart of {plan.vitals.chart_days:,} daily readings (Daphne, PostgreSQL):",
        flush=True,
    )
    return vitals_run_isolated(plan.vitals)


def care_bench_run(plan: BenchPlan) -> CareResult:
    print(
        f"Doctor workspace: {plan.care.patients:,} patients, {plan.care.readings:,} readings, "
        f"{plan.care.appointments:,} appointments (Daphne, PostgreSQL; the data set is built once and kept):",
        flush=True,
    )
    return care_run_isolated(plan.care)


def bench_run(plan: BenchPlan) -> tuple[RunInfo, list[LoadResult], list[PageWeight]]:
    print("Starting Telemed in embedded mode:", flush=True)
    with embedded_server() as server:
        session_cookies = patient_sign_in(base_url=server.base_url)
        targets = [
            LoadTarget(label="home, signed in", path=HOME_PATH, cookies=session_cookies),
            LoadTarget(label="sign-in page, anonymous", path=LOGIN_PATH),
        ]
        load_results = []
        for target in targets:
            print(f"Loading {target.path} with {plan.clients} clients for {plan.duration_s:g} s …", flush=True)
            load_results.append(
                load_run(
                    base_url=server.base_url,
                    target=target,
                    clients=plan.clients,
                    warmup_s=plan.warmup_s,
                    duration_s=plan.duration_s,
                    server_pid=server.pid,
                )
            )
        print(f"Weighing {len(plan.pages)} page(s) in Chromium …", flush=True)
        weights, browser = page_weights_measure(
            base_url=server.base_url, pages=plan.pages, session_cookies=session_cookies
        )
    run = RunInfo(
        measured_at=datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        platform=platform.platform(),
        cpu_count=os.cpu_count(),
        python_version=platform.python_version(),
        browser=browser,
        generator=generator_name(),
        clients=plan.clients,
        warmup_s=plan.warmup_s,
        duration_s=plan.duration_s,
    )
    return run, load_results, weights


def main(argv: list[str]) -> int:
    arguments = arguments_parse(argv)
    plan = SMOKE_PLAN if arguments.smoke else FULL_PLAN
    overrides = settings_overrides_parse(arguments.worker_env)
    if overrides:
        plan = dataclasses.replace(
            plan, delivery=dataclasses.replace(plan.delivery, settings_overrides=overrides), writes_doc=False
        )
    if arguments.duration is not None:
        if arguments.duration <= 0:
            raise SystemExit("python -m bench: --duration wants a positive number of seconds")
        plan = dataclasses.replace(
            plan, booking=dataclasses.replace(plan.booking, duration_s=arguments.duration), writes_doc=False
        )
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    if arguments.only == "notifications":
        delivery = delivery_bench_run(plan)
        print()
        print(delivery_summary_text(delivery))
        return 0 if delivery.passed or not delivery.measured else 1
    if arguments.only == "slots":
        slots = slots_bench_run(plan)
        print()
        print(slots_summary_text(slots))
        if plan.writes_doc and slots.measured:
            benchmarks_doc_section_write(slots_markdown(slots))
            print(f"\nWrote its section of {BENCHMARKS_DOC}")
        return 0 if slots.passed or not slots.measured else 1
    if arguments.only == "booking":
        booking = booking_bench_run(plan)
        print()
        print(booking_summary_text(booking))
        if plan.writes_doc and booking.measured:
            benchmarks_doc_section_write(booking_markdown(booking))
            print(f"\nWrote its section of {BENCHMARKS_DOC}")
        return 0 if booking.passed or not booking.measured else 1
    if arguments.only == "signaling":
        signaling = signaling_bench_run(plan)
        print()
        print(signaling_summary_text(signaling))
        if plan.writes_doc and signaling.measured:
            benchmarks_doc_section_write(signaling_markdown(signaling))
            print(f"\nWrote its section of {BENCHMARKS_DOC}")
        return 0 if signaling.passed or not signaling.measured else 1
    if arguments.only == "call-setup":
        call_setup = call_setup_bench_run(plan)
        print()
        print(call_setup_summary_text(call_setup))
        if plan.writes_doc and call_setup.measured:
            benchmarks_doc_section_write(call_setup_markdown(call_setup))
            print(f"\nWrote its section of {BENCHMARKS_DOC}")
        return 0 if call_setup.passed or not call_setup.measured else 1
    if arguments.only == "ecg":
        ecg = ecg_bench_run(plan)
        print()
        print(ecg_summary_text(ecg))
        if plan.writes_doc and ecg.measured:
            benchmarks_doc_section_write(ecg_markdown(ecg))
            print(f"\nWrote its section of {BENCHMARKS_DOC}")
        return 0 if ecg.passed or not ecg.measured else 1
    if arguments.only == "vitals":
        vitals = vitals_bench_run(plan)
        print()
        print(vitals_summary_text(vitals))
        if plan.writes_doc and vitals.measured:
            benchmarks_doc_section_write(vitals_markdown(vitals))
            print(f"\nWrote its section of {BENCHMARKS_DOC}")
        return 0 if vitals.passed or not vitals.measured else 1
    if arguments.only == "care":
        care = care_bench_run(plan)
        print()
        print(care_summary_text(care))
        if plan.writes_doc and care.measured:
            benchmarks_doc_section_write(care_markdown(care))
            print(f"\nWrote its section of {BENCHMARKS_DOC}")
        return 0 if care.passed or not care.measured else 1
    try:
        run, load_results, weights = bench_run(plan)
    except (ServerError, SignInError) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    everything = arguments.only is None
    delivery_result = delivery_bench_run(plan) if everything else None
    slots_result = slots_bench_run(plan) if everything else None
    booking_result = booking_bench_run(plan) if everything else None
    signaling_result = signaling_bench_run(plan) if everything else None
    call_setup_result = call_setup_bench_run(plan) if everything else None
    ecg_result = ecg_bench_run(plan) if everything else None
    vitals_result = vitals_bench_run(plan) if everything else None
    care_result = care_bench_run(plan) if everything else None
    print()
    print(summary_text(run=run, load_results=load_results, weights=weights))
    if delivery_result is not None:
        print(delivery_summary_text(delivery_result))
    if slots_result is not None:
        print(slots_summary_text(slots_result))
    if booking_result is not None:
        print(booking_summary_text(booking_result))
    if signaling_result is not None:
        print(signaling_summary_text(signaling_result))
    if call_setup_result is not None:
        print(call_setup_summary_text(call_setup_result))
    if ecg_result is not None:
        print(ecg_summary_text(ecg_result))
    if vitals_result is not None:
        print(vitals_summary_text(vitals_result))
    if care_result is not None:
        print(care_summary_text(care_result))
    if plan.writes_doc and everything:
        benchmarks_doc_write(
            generated_markdown(
                run=run,
                load_results=load_results,
                weights=weights,
                delivery=delivery_result,
                slots=slots_result,
                booking=booking_result,
            )
        )
        # The consult benchmarks' sections follow the others.
        if signaling_result is not None:
            benchmarks_doc_section_write(signaling_markdown(signaling_result))
        if call_setup_result is not None:
            benchmarks_doc_section_write(call_setup_markdown(call_setup_result))
        if ecg_result is not None:
            benchmarks_doc_section_write(ecg_markdown(ecg_result))
        if vitals_result is not None:
            benchmarks_doc_section_write(vitals_markdown(vitals_result))
        if care_result is not None:
            benchmarks_doc_section_write(care_markdown(care_result))
        print(f"\nWrote {BENCHMARKS_DOC}")
    measured_everything = all(result.errors == 0 for result in load_results) and all(
        weight.loaded for weight in weights
    )
    others_passed = all(
        result is None or result.passed or not result.measured
        for result in (
            delivery_result,
            slots_result,
            booking_result,
            signaling_result,
            call_setup_result,
            ecg_result,
            vitals_result,
            care_result,
        )
    )
    return 0 if measured_everything and others_passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
