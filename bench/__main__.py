"""``python -m bench``: run the benchmarks and write docs/benchmarks.md.

Exit status 0 when every figure was measured (a page over its budget is a
finding in the report, not a failure of the run); 1 when a request failed, a
page did not load or the app could not start.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import signal
import sys
from dataclasses import dataclass
from types import FrameType

from bench.http_load import LoadResult, LoadTarget, generator_name, load_run
from bench.page_weight import PATIENT_PAGES, PageSpec, PageWeight, page_weights_measure
from bench.report import BENCHMARKS_DOC, RunInfo, benchmarks_doc_write, generated_markdown, summary_text
from bench.server import ServerError, embedded_server
from bench.sign_in import HOME_PATH, LOGIN_PATH, SignInError, patient_sign_in


@dataclass(frozen=True)
class BenchPlan:
    clients: int
    warmup_s: float
    duration_s: float
    pages: list[PageSpec]
    writes_doc: bool


FULL_PLAN = BenchPlan(clients=16, warmup_s=2.0, duration_s=10.0, pages=PATIENT_PAGES, writes_doc=True)
SMOKE_PLAN = BenchPlan(clients=16, warmup_s=0.5, duration_s=1.5, pages=PATIENT_PAGES[:1], writes_doc=False)


def arguments_parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a few seconds per endpoint and one page, to check the harness works; writes nothing",
    )
    return parser.parse_args(argv)


def stop_on_sigterm(signal_number: int, frame: FrameType | None) -> None:
    """SIGTERM unwinds like Ctrl-C, so the server is stopped on the way out."""
    raise SystemExit(128 + signal_number)


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
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        run, load_results, weights = bench_run(plan)
    except (ServerError, SignInError) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    print()
    print(summary_text(run=run, load_results=load_results, weights=weights))
    if plan.writes_doc:
        benchmarks_doc_write(generated_markdown(run=run, load_results=load_results, weights=weights))
        print(f"\nWrote {BENCHMARKS_DOC}")
    measured_everything = all(result.errors == 0 for result in load_results) and all(
        weight.loaded for weight in weights
    )
    return 0 if measured_everything else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
