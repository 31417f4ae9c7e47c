"""HTTP throughput: N concurrent keep-alive clients request one path for a
fixed time after a warm-up; requests per second and latency percentiles.

The load generator is ``wrk`` when it is on PATH (it costs the server least
CPU), otherwise an asyncio client on httpx, one connection per client.
Any answer outside 2xx (a redirect to the sign-in page included) and any
transport failure counts as an error.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import resource
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.server import process_cpu_seconds

REQUEST_TIMEOUT_S = 10.0
# Sent by both generators so the server does the same gzip work it does for browsers.
ACCEPT_ENCODING = "gzip, deflate"
# A ceiling on each client's loop; the deadline normally ends it long before.
MAX_REQUESTS_PER_CLIENT = 1_000_000
WRK_RESULT_PREFIX = "BENCH_JSON "

# Each wrk thread counts non-2xx answers; done() adds them up and prints one JSON line.
WRK_SCRIPT = """
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non_2xx = 0
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non_2xx = non_2xx + 1
  end
end

function done(summary, latency, requests)
  local non_2xx_total = 0
  for _, thread in ipairs(threads) do
    non_2xx_total = non_2xx_total + thread:get("non_2xx")
  end
  local socket_errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    "BENCH_JSON {\\"requests\\": %d, \\"duration_us\\": %d, \\"p50_us\\": %d, \\"p95_us\\": %d, "
      .. "\\"non_2xx\\": %d, \\"socket_errors\\": %d}\\n",
    summary.requests, summary.duration, math.floor(latency:percentile(50)), math.floor(latency:percentile(95)),
    non_2xx_total, socket_errors))
end
"""


@dataclass(frozen=True)
class LoadTarget:
    label: str
    path: str
    cookies: dict[str, str] = field(default_factory=dict)

    @property
    def signed_in(self) -> bool:
        return bool(self.cookies)


@dataclass(frozen=True)
class LoadResult:
    target: LoadTarget
    generator: str
    clients: int
    duration_s: float
    requests: int
    errors: int
    error_kinds: dict[str, int]
    p50_ms: float
    p95_ms: float
    # CPU seconds per wall-clock second during the measured window: 1.0 is one core busy.
    generator_cpu_cores: float | None
    server_cpu_cores: float | None

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0


def percentile_ms(samples_s: list[float], percent: float) -> float:
    """Nearest-rank percentile of durations in seconds, in milliseconds."""
    if not samples_s:
        return math.nan
    ordered = sorted(samples_s)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1] * 1000


def wrk_executable() -> str | None:
    return shutil.which("wrk")


def generator_name() -> str:
    wrk = wrk_executable()
    return f"wrk ({wrk})" if wrk else f"httpx {httpx.__version__} asyncio client"


def _cpu_share(start_s: float | None, end_s: float | None, wall_s: float) -> float | None:
    if start_s is None or end_s is None or wall_s <= 0:
        return None
    return (end_s - start_s) / wall_s


# --- httpx / asyncio --------------------------------------------------------


@dataclass
class _Tally:
    latencies_s: list[float] = field(default_factory=list)
    error_kinds: Counter[str] = field(default_factory=Counter)


async def _client_loop(
    *, base_url: str, target: LoadTarget, measure_start: float, measure_end: float, tally: _Tally
) -> None:
    """One client on one keep-alive connection, requesting until measure_end.
    Only requests that complete inside the measured window are counted."""
    async with httpx.AsyncClient(
        base_url=base_url,
        cookies=target.cookies,
        headers={"Accept-Encoding": ACCEPT_ENCODING},
        timeout=REQUEST_TIMEOUT_S,
        follow_redirects=False,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    ) as client:
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            started = time.perf_counter()
            if started >= measure_end:
                return
            error_kind: str | None
            try:
                response = await client.get(target.path)
                error_kind = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
            except httpx.HTTPError as error:
                error_kind = type(error).__name__
            finished = time.perf_counter()
            if measure_start <= finished <= measure_end:
                tally.latencies_s.append(finished - started)
                if error_kind is not None:
                    tally.error_kinds[error_kind] += 1


async def _clients_run(
    *, base_url: str, target: LoadTarget, clients: int, measure_start: float, measure_end: float
) -> _Tally:
    tally = _Tally()
    async with asyncio.TaskGroup() as group:
        for _ in range(clients):
            group.create_task(
                _client_loop(
                    base_url=base_url,
                    target=target,
                    measure_start=measure_start,
                    measure_end=measure_end,
                    tally=tally,
                )
            )
    return tally


def load_run_httpx(
    *, base_url: str, target: LoadTarget, clients: int, warmup_s: float, duration_s: float, server_pid: int
) -> LoadResult:
    measure_start = time.perf_counter() + warmup_s
    measure_end = measure_start + duration_s
    cpu_marks: dict[str, tuple[float, float | None]] = {}

    async def run_and_mark_cpu() -> _Tally:
        async def mark(name: str, at: float) -> None:
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            cpu_marks[name] = (time.process_time(), process_cpu_seconds(server_pid))

        marks = [asyncio.create_task(mark("start", measure_start)), asyncio.create_task(mark("end", measure_end))]
        tally = await _clients_run(
            base_url=base_url,
            target=target,
            clients=clients,
            measure_start=measure_start,
            measure_end=measure_end,
        )
        await asyncio.gather(*marks)
        return tally

    tally = asyncio.run(run_and_mark_cpu())
    (generator_start, server_start), (generator_end, server_end) = cpu_marks["start"], cpu_marks["end"]
    return LoadResult(
        target=target,
        generator=generator_name(),
        clients=clients,
        duration_s=duration_s,
        requests=len(tally.latencies_s),
        errors=sum(tally.error_kinds.values()),
        error_kinds=dict(tally.error_kinds),
        p50_ms=percentile_ms(tally.latencies_s, 50),
        p95_ms=percentile_ms(tally.latencies_s, 95),
        generator_cpu_cores=_cpu_share(generator_start, generator_end, duration_s),
        server_cpu_cores=_cpu_share(server_start, server_end, duration_s),
    )


# --- wrk ----------------------------------------------------------------------


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _wrk_command(*, wrk: str, script: Path, url: str, target: LoadTarget, clients: int, seconds: int) -> list[str]:
    threads = max(1, min(clients, os.cpu_count() or 1))
    command = [wrk, "-t", str(threads), "-c", str(clients), "-d", f"{seconds}s"]
    command += ["--timeout", f"{REQUEST_TIMEOUT_S:.0f}s", "-s", str(script)]
    command += ["-H", f"Accept-Encoding: {ACCEPT_ENCODING}"]
    if target.cookies:
        command += ["-H", "Cookie: " + "; ".join(f"{name}={value}" for name, value in target.cookies.items())]
    return [*command, url]


def load_run_wrk(
    *, wrk: str, base_url: str, target: LoadTarget, clients: int, warmup_s: float, duration_s: float, server_pid: int
) -> LoadResult:
    url = base_url + target.path
    with tempfile.TemporaryDirectory(prefix="telemed-bench-wrk-") as directory:
        script = Path(directory) / "count_non_2xx.lua"
        script.write_text(WRK_SCRIPT, encoding="utf-8")
        warmup = _wrk_command(
            wrk=wrk, script=script, url=url, target=target, clients=clients, seconds=max(1, round(warmup_s))
        )
        subprocess.run(warmup, capture_output=True, check=True, timeout=warmup_s + 30)

        measured = _wrk_command(
            wrk=wrk, script=script, url=url, target=target, clients=clients, seconds=max(1, round(duration_s))
        )
        generator_start, server_start = _children_cpu_seconds(), process_cpu_seconds(server_pid)
        wall_start = time.perf_counter()
        completed = subprocess.run(measured, capture_output=True, text=True, check=True, timeout=duration_s + 30)
        wall_s = time.perf_counter() - wall_start
        generator_end, server_end = _children_cpu_seconds(), process_cpu_seconds(server_pid)

    lines = [line for line in completed.stdout.splitlines() if line.startswith(WRK_RESULT_PREFIX)]
    if not lines:
        raise RuntimeError(f"wrk printed no result:\n{completed.stdout}\n{completed.stderr}")
    figures = json.loads(lines[-1].removeprefix(WRK_RESULT_PREFIX))
    error_kinds = {"non-2xx": int(figures["non_2xx"]), "socket": int(figures["socket_errors"])}
    return LoadResult(
        target=target,
        generator=generator_name(),
        clients=clients,
        duration_s=figures["duration_us"] / 1e6,
        requests=int(figures["requests"]),
        errors=sum(error_kinds.values()),
        error_kinds={kind: count for kind, count in error_kinds.items() if count},
        p50_ms=figures["p50_us"] / 1000,
        p95_ms=figures["p95_us"] / 1000,
        generator_cpu_cores=_cpu_share(generator_start, generator_end, wall_s),
        server_cpu_cores=_cpu_share(server_start, server_end, wall_s),
    )


def load_run(
    *, base_url: str, target: LoadTarget, clients: int, warmup_s: float, duration_s: float, server_pid: int
) -> LoadResult:
    wrk = wrk_executable()
    if wrk is not None:
        return load_run_wrk(
            wrk=wrk,
            base_url=base_url,
            target=target,
            clients=clients,
            warmup_s=warmup_s,
            duration_s=duration_s,
            server_pid=server_pid,
        )
    return load_run_httpx(
        base_url=base_url,
        target=target,
        clients=clients,
        warmup_s=warmup_s,
        duration_s=duration_s,
        server_pid=server_pid,
    )
