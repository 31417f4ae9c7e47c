"""``python -m bench.ecg``: how long ECG analysis takes and how much memory it needs.

1. MIT-BIH record 100 (30 min, 360 Hz) from its WFDB zip: read, analyse,
   and the beats against the reference annotations.
2. A 24 h two-lead recording at 500 Hz built from it (both leads resampled,
   tiled 48 times), written as EDF (173 MB, so over the 50 MB upload limit:
   read here with a raised limit), read and analysed in a child process:
   time and the child's peak resident memory (goal: < 60 s, < 1.5 GB).

``--detectors`` compares the R-peak detectors that are installed (sleepecg,
wfdb's XQRS and GQRS, and neurokit2's if present) on record 100, clean and
with noise added; docs/ecg-analysis.md has the table.

``python -m bench --only ecg`` runs the same (``--smoke``: a 1 h recording
instead of 24 h) and rewrites the "ECG analysis" section of
docs/benchmarks.md; ``make bench`` runs it with the others.

Exit status 0 when every figure was measured, 1 when something failed (a
file refused, a child that died, a goal missed is a finding, not a failure).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from apps.vitals.ecg import EcgFileError, EcgLimits, ecg_analyse, ecg_file_read
from bench.slots import utc_now_text

HOURS = 24
RATE_HZ = 500.0
GOAL_S = 60.0
GOAL_MB = 1500.0
TOLERANCE_S = 0.1
HOLTER_LIMITS = EcgLimits(max_file_bytes=400 * 1024 * 1024)
GOAL_SE = 0.995
ECG_HEADING = "## ECG analysis"


@dataclass(frozen=True)
class EcgPlan:
    hours: float = HOURS  # the long recording's length (0: record 100 only)


FULL_ECG = EcgPlan()
SMOKE_ECG = EcgPlan(hours=1)


@dataclass
class EcgResult:
    plan: EcgPlan
    skipped: str | None = None
    error: str | None = None
    measured_at: str = field(default_factory=utc_now_text)
    load_average: float | None = None  # the machine's, over the minute before the measurement
    record_100: dict[str, Any] | None = None
    holter: dict[str, Any] | None = None

    @property
    def measured(self) -> bool:
        return self.skipped is None

    @property
    def passed(self) -> bool:
        """Every figure measured and record 100's beats found; time and
        memory over the goal are findings in the report, not failures."""
        return (
            self.error is None
            and self.record_100 is not None
            and self.record_100["sensitivity"] >= GOAL_SE
            and self.record_100["positive_predictivity"] >= GOAL_SE
            and (self.holter is not None or not self.plan.hours)
        )

    @property
    def holter_total_s(self) -> float:
        return self.holter["read_s"] + self.holter["analyse_s"] if self.holter else math.nan

    @property
    def holter_within_goal(self) -> bool:
        return self.holter is not None and self.holter_total_s < GOAL_S and self.holter["peak_mb"] < GOAL_MB


def _scores(reference: npt.NDArray[np.int64], found: npt.NDArray[np.int64], rate_hz: float) -> tuple[float, float]:
    from wfdb import processing

    comparison = processing.compare_annotations(reference, found, int(TOLERANCE_S * rate_hz))
    return float(comparison.sensitivity), float(comparison.positive_predictivity)


def _maxrss_mb() -> float:
    """Peak resident memory of this process. Linux keeps ru_maxrss across
    exec (a child started by a big parent would report the parent's peak),
    so the VmHWM of this process's own memory comes first."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def record_100_run() -> dict[str, Any]:
    from tests.vitals.ecg import records

    data = records.wfdb_zip()
    started = time.perf_counter()
    signal = ecg_file_read(data)
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    analysis = ecg_analyse(signal)
    analyse_s = time.perf_counter() - started
    sensitivity, predictivity = _scores(records.record_100().beats, analysis.r_peaks, signal.sample_rate_hz)
    return {
        "read_s": read_s,
        "analyse_s": analyse_s,
        "beats": analysis.beat_count,
        "sensitivity": sensitivity,
        "positive_predictivity": predictivity,
        "summary": analysis.summary(),
    }


def holter_edf_write(path: Path, *, hours: float = HOURS) -> int:
    """Record 100's two leads at 500 Hz, tiled to ``hours``, as EDF; returns
    the number of reference beats in it."""
    from tests.vitals.ecg import records

    record = records.record_100()
    copies = int(hours * 3600 // (len(record.leads_mv["MLII"]) / record.sample_rate_hz)) + 1
    leads = {}
    for name, samples in record.leads_mv.items():
        resampled = records.resample(samples, record.sample_rate_hz, RATE_HZ)
        leads[f"ECG {name}"] = np.tile(resampled, copies)[: int(hours * 3600 * RATE_HZ)]
    path.write_bytes(records.edf_bytes(leads, RATE_HZ))
    return int(record.beats.size * hours * 3600 / (len(record.leads_mv["MLII"]) / record.sample_rate_hz))


def holter_child(path: Path) -> None:
    """In a fresh process: read and analyse the file, print JSON figures."""
    baseline_mb = _maxrss_mb()
    started = time.perf_counter()
    signal = ecg_file_read(path, limits=HOLTER_LIMITS)
    read_s = time.perf_counter() - started
    after_read_mb = _maxrss_mb()
    started = time.perf_counter()
    analysis = ecg_analyse(signal)
    analyse_s = time.perf_counter() - started
    print(
        json.dumps(
            {
                "read_s": read_s,
                "analyse_s": analyse_s,
                "beats": analysis.beat_count,
                "lead": signal.lead,
                "samples": int(signal.samples_mv.size),
                "baseline_mb": baseline_mb,
                "after_read_mb": after_read_mb,
                "peak_mb": _maxrss_mb(),
                "summary": analysis.summary(),
            }
        )
    )


def holter_run(*, hours: float = HOURS) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="telemed-bench-ecg-") as directory:
        path = Path(directory) / f"holter-{hours:g}h.edf"
        started = time.perf_counter()
        expected_beats = holter_edf_write(path, hours=hours)
        build_s = time.perf_counter() - started
        size_mb = path.stat().st_size / 1e6
        child = subprocess.run(
            [sys.executable, "-m", "bench.ecg", "--child", str(path)],
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
    if child.returncode != 0:
        raise RuntimeError(f"the analysis child failed ({child.returncode}): {child.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    figures.update(build_s=build_s, file_mb=size_mb, expected_beats=expected_beats, hours=hours)
    return figures


def ecg_run(plan: EcgPlan) -> EcgResult:
    """Record 100 in this process, then the long recording in a child."""
    result = EcgResult(plan=plan, load_average=os.getloadavg()[0])
    try:
        result.record_100 = record_100_run()
        if plan.hours:
            result.holter = holter_run(hours=plan.hours)
    except (EcgFileError, RuntimeError, OSError, ValueError, subprocess.SubprocessError) as error:
        result.error = f"{error.__class__.__name__}: {error.args[0] if error.args else ''}"
    return result


def _record_100_line(short: dict[str, Any]) -> str:
    return (
        f"record 100 (30 min, 360 Hz, WFDB zip): read {short['read_s']:.2f} s, "
        f"analysed {short['analyse_s']:.2f} s, "
        f"{short['beats']} beats, Se {short['sensitivity']:.2%}, +P {short['positive_predictivity']:.2%}"
    )


def _holter_line(result: EcgResult) -> str:
    long = result.holter or {}
    verdict = "within" if result.holter_within_goal else "OVER"
    return (
        f"{long['hours']:g} h, two leads, 500 Hz (EDF {long['file_mb']:.0f} MB, lead {long['lead']}): "
        f"read {long['read_s']:.1f} s + analysed {long['analyse_s']:.1f} s = {result.holter_total_s:.1f} s, "
        f"peak memory {long['peak_mb']:.0f} MB (interpreter and libraries {long['baseline_mb']:.0f} MB, "
        f"after reading {long['after_read_mb']:.0f} MB); {long['beats']} beats of {long['expected_beats']} "
        f"expected; {verdict} the goal of {GOAL_S:.0f} s and {GOAL_MB:.0f} MB"
    )


def ecg_summary_text(result: EcgResult) -> str:
    if result.skipped is not None:
        return f"ECG analysis: skipped ({result.skipped})"
    lines = ["ECG analysis:"]
    if result.record_100:
        lines.append(f"  {_record_100_line(result.record_100)}")
    if result.holter:
        lines.append(f"  {_holter_line(result)}")
    if result.error:
        lines.append(f"  FAILED: {result.error}")
    else:
        lines.append("  " + ("passed" if result.passed else "FAILED: record 100's beats not found"))
    return "\n".join(lines)


def _pct(value: float) -> str:
    return f"{100 * value:.2f} %"


def ecg_markdown(result: EcgResult) -> str:
    lines = [
        ECG_HEADING,
        "",
        "How long the ECG analysis task's work takes (`ecg_file_read`, then `ecg_analyse`: band-pass filter, "
        "R peaks with sleepecg, heart rate, RR intervals, HRV, the AF screen and the signal quality; "
        "docs/ecg-analysis.md), without the task's database writes. Record 100 of the MIT-BIH Arrhythmia "
        "Database (lead MLII, 30 min at 360 Hz, the WFDB zip a patient would upload) is read and analysed in "
        "the benchmark's process, and its beats are matched with the reference annotations at 100 ms "
        "(`wfdb.processing.compare_annotations`). The long recording is record 100's two leads resampled to "
        "500 Hz and tiled, written as EDF (over the 50 MB upload limit, so read with a raised one), then read "
        "and analysed in a fresh child process whose own peak resident memory (`VmHWM`) is reported. Goal for "
        f"24 h: under {GOAL_S:.0f} s and {GOAL_MB:,.0f} MB. `python -m bench --only ecg` (or "
        "`python -m bench.ecg`) runs just this and rewrites this section.",
        "",
    ]
    if result.skipped is not None:
        lines.append(f"**Skipped**: {result.skipped}.")
        return "\n".join(lines)
    lines += [
        "| recording | read s | analyse s | total s | peak memory MB | beats | Se | +P |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    if result.record_100:
        short = result.record_100
        lines.append(
            f"| record 100 (30 min, 360 Hz, one lead, WFDB zip) | {short['read_s']:.2f} | {short['analyse_s']:.2f} "
            f"| {short['read_s'] + short['analyse_s']:.2f} | | {short['beats']:,} of 2,273 "
            f"| {_pct(short['sensitivity'])} | {_pct(short['positive_predictivity'])} |"
        )
    if result.holter:
        long = result.holter
        lines.append(
            f"| {long['hours']:g} h, two leads, 500 Hz (EDF, {long['file_mb']:.0f} MB; lead {long['lead']} "
            f"analysed, {long['samples']:,} samples) | {long['read_s']:.1f} | {long['analyse_s']:.1f} "
            f"| {result.holter_total_s:.1f} | {long['peak_mb']:.0f} "
            f"| {long['beats']:,} of {long['expected_beats']:,} | | |"
        )
    lines.append("")
    if result.record_100:
        lines.append(f"- Record 100's analysis: {_summary_text(result.record_100['summary'])}.")
    if result.holter:
        long = result.holter
        verdict = "within" if result.holter_within_goal else "**over**"
        during = (
            "reading reached it and the analysis added nothing above it"
            if long["peak_mb"] <= long["after_read_mb"]
            else f"the analysis took it from {long['after_read_mb']:.0f} MB after reading to the peak"
        )
        lines.append(
            f"- The long recording: {verdict} the goal. Of its {long['peak_mb']:.0f} MB peak, "
            f"{long['baseline_mb']:.0f} MB is the interpreter and libraries; {during}. Reading holds the file's "
            "bytes, the chosen lead's samples and their float64 copy. Building the file (not timed) took "
            f"{long['build_s']:.0f} s. The beats not found are at the tiling seams."
        )
    if result.error:
        lines.append(f"- **Failed**: {result.error}")
    lines.append(
        f"- Measured {result.measured_at} on {_machine()}; the machine's load average over the minute before: "
        f"{'n/a' if result.load_average is None else f'{result.load_average:.2f}'} (other work shared its two "
        "cores, so the times are rough)."
    )
    return "\n".join(lines)


def _summary_text(summary: dict[str, Any]) -> str:
    """The analysis summary's main figures in words."""
    heart, rr, hrv, quality, af = (summary.get(key) or {} for key in ("heart_rate", "rr", "hrv", "quality", "af"))
    return (
        f"mean heart rate {heart.get('mean_bpm', math.nan):.1f} /min (min {heart.get('min_bpm', math.nan):.1f}, "
        f"max {heart.get('max_bpm', math.nan):.1f}), RR {rr.get('min_ms', math.nan):.0f} to "
        f"{rr.get('max_ms', math.nan):.0f} ms, SDNN {hrv.get('sdnn_ms', math.nan):.1f} ms, "
        f"RMSSD {hrv.get('rmssd_ms', math.nan):.1f} ms, pNN50 {hrv.get('pnn50_pct', math.nan):.1f} %; "
        f"AF screen ({af.get('method', 'n/a')}): {'irregular' if af.get('irregular') else 'not irregular'}; "
        f"quality {quality.get('index', math.nan):.2f} ({quality.get('level', 'n/a')}); "
        f"detector {summary.get('detector', 'n/a')}"
    )


def _machine() -> str:
    import platform

    return f"{platform.platform()}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}"


def detectors_compare() -> list[dict[str, Any]]:
    from tests.vitals.ecg import records

    record = records.record_100()
    clean = record.leads_mv["MLII"]
    rng = np.random.default_rng(100)
    time_s = np.arange(clean.size) / record.sample_rate_hz
    # white noise (SD 0.15 mV) with 0.3 mV of 0.3 Hz baseline wander; then
    # SD 0.3 mV, 0.5 mV of wander and 0.2 mV of 50 Hz mains (R waves here are about 1.5 mV)
    noisy = clean + rng.normal(0, 0.15, clean.size) + 0.3 * np.sin(2 * np.pi * 0.3 * time_s)
    very_noisy = (
        clean
        + rng.normal(0, 0.3, clean.size)
        + 0.5 * np.sin(2 * np.pi * 0.3 * time_s)
        + 0.2 * np.sin(2 * np.pi * 50 * time_s)
    )
    detectors = _detectors()
    rows = []
    for name, detect in detectors.items():
        for condition, samples in (("clean", clean), ("noisy", noisy), ("very noisy", very_noisy)):
            detect(samples[:3600], record.sample_rate_hz)  # warm-up (imports, JIT)
            started = time.perf_counter()
            found = np.asarray(detect(samples, record.sample_rate_hz), dtype=np.int64)
            elapsed = time.perf_counter() - started
            sensitivity, predictivity = _scores(record.beats, found, record.sample_rate_hz)
            rows.append(
                {
                    "detector": name,
                    "signal": condition,
                    "beats": int(found.size),
                    "sensitivity": sensitivity,
                    "positive_predictivity": predictivity,
                    "time_s": elapsed,
                }
            )
    return rows


def _detectors() -> dict[str, Any]:
    from importlib.metadata import version

    from sleepecg import detect_heartbeats
    from wfdb import processing

    found: dict[str, Any] = {
        f"sleepecg {version('sleepecg')}": detect_heartbeats,
        f"wfdb {version('wfdb')} XQRS": lambda x, fs: processing.xqrs_detect(x, fs, verbose=False),
        f"wfdb {version('wfdb')} GQRS": lambda x, fs: processing.gqrs_detect(x, fs=fs),
    }
    try:
        import neurokit2 as nk  # not a dependency: install it in a scratch venv to compare
    except ImportError:
        return found

    def neurokit(method: str) -> Any:
        def detect(x: npt.NDArray[np.float64], fs: float) -> Any:
            cleaned = nk.ecg_clean(x, sampling_rate=fs, method="neurokit")
            return nk.ecg_peaks(cleaned, sampling_rate=fs, method=method)[1]["ECG_R_Peaks"]

        return detect

    for method in ("neurokit", "pantompkins1985", "kalidas2017", "rodrigues2021"):
        found[f"neurokit2 {version('neurokit2')} {method}"] = neurokit(method)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ecg", description=__doc__.splitlines()[0])
    parser.add_argument("--detectors", action="store_true", help="compare the installed R-peak detectors")
    parser.add_argument("--skip-holter", action="store_true", help="only record 100")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        holter_child(options.child)
        return 0
    if options.detectors:
        print("| detector | signal | beats | Se | +P | time (s) |")
        print("| --- | --- | ---: | ---: | ---: | ---: |")
        for row in detectors_compare():
            print(
                f"| {row['detector']} | {row['signal']} | {row['beats']} | {row['sensitivity']:.2%} "
                f"| {row['positive_predictivity']:.2%} | {row['time_s']:.2f} |"
            )
        return 0
    result = ecg_run(EcgPlan(hours=0 if options.skip_holter else HOURS))
    print(ecg_summary_text(result))
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
