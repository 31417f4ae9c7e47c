"""The results as Markdown for docs/benchmarks.md, and as a short summary for the terminal."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from bench.http_load import ACCEPT_ENCODING, LoadResult
from bench.page_weight import PAGE_BUDGET_BYTES, PageWeight

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
        "How fast one Daphne process serves patient pages, and how many bytes a patient's phone downloads "
        "to open each of them. `make bench` (`.venv/bin/python -m bench`, about a minute) starts Telemed in "
        "embedded mode in a fresh temporary directory (SQLite, in-memory channel layer, the `seed_demo` data, "
        "collected static files, no Celery worker), serves it with one Daphne process on 127.0.0.1, measures, "
        "stops it and rewrites this section; `python -m bench --smoke` is a few-second check that writes "
        "nothing. "
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


def generated_markdown(*, run: RunInfo, load_results: list[LoadResult], weights: list[PageWeight]) -> str:
    sections = [intro_markdown(run), throughput_markdown(load_results, run), page_weight_markdown(weights)]
    return "\n\n".join(sections)


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
