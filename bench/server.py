"""Telemed in embedded mode in a throw-away directory, served by one Daphne process."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx

PROJECT_DIR = Path(__file__).resolve().parent.parent
SETTINGS_FILE = PROJECT_DIR / "telemed" / "settings.py"

# Always removed from the child's environment, whatever settings.py reads:
# any of them would switch the app out of embedded mode.
PRODUCTION_VARIABLES = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "SECRET_KEY_FILE", "DJANGO_SETTINGS_MODULE")
_SETTINGS_VARIABLE_PATTERN = re.compile(r"""\benv_[a-z]+\(\s*["']([A-Z][A-Z0-9_]*)["']""")

SETUP_COMMAND_TIMEOUT_S = 300
SERVER_START_TIMEOUT_S = 30.0
SERVER_STOP_TIMEOUT_S = 10.0
LOG_TAIL_CHARS = 4000


class ServerError(RuntimeError):
    """The app could not be prepared or started; the message carries its output."""


@dataclass(frozen=True)
class RunningServer:
    base_url: str
    pid: int
    var_dir: Path
    log_path: Path


def settings_variable_names() -> set[str]:
    """Every environment variable telemed/settings.py reads, with its ``_FILE`` form."""
    names = set(_SETTINGS_VARIABLE_PATTERN.findall(SETTINGS_FILE.read_text(encoding="utf-8")))
    return names | {f"{name}_FILE" for name in names}


def embedded_environment(*, var_dir: Path) -> dict[str, str]:
    """The parent's environment without any Telemed setting, plus TELEMED_VAR_DIR."""
    removed = settings_variable_names() | set(PRODUCTION_VARIABLES)
    environment = {name: value for name, value in os.environ.items() if name not in removed}
    environment["TELEMED_VAR_DIR"] = str(var_dir)
    return environment


def free_local_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def manage_py_run(*arguments: str, environment: dict[str, str]) -> None:
    command = [sys.executable, "manage.py", *arguments]
    completed = subprocess.run(
        command,
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=SETUP_COMMAND_TIMEOUT_S,
        check=False,
    )
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr)[-LOG_TAIL_CHARS:]
        raise ServerError(f"`manage.py {' '.join(arguments)}` failed ({completed.returncode}):\n{output}")


def django_setup_here(environment: dict[str, str]) -> None:
    """This process (a benchmark's child) opens the bench's database with
    Telemed's settings: its environment becomes ``environment``."""
    for name in list(os.environ):
        if name not in environment:
            del os.environ[name]
    os.environ.update(environment)
    os.environ["DJANGO_SETTINGS_MODULE"] = "telemed.settings"
    sys.path.insert(0, str(PROJECT_DIR))
    import logging

    import django

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise


def child_figures(module: str, plan: Any, *, timeout_s: float) -> dict[str, Any]:
    """Run a benchmark in a process of its own (``python -m <module> --child
    <plan as JSON>``, so that this process keeps its environment and no Django
    of its own) and return the figures it prints as JSON on its last line;
    RuntimeError when it printed none."""
    completed = subprocess.run(
        [sys.executable, "-m", module, "--child", json.dumps(dataclasses.asdict(plan))],
        cwd=PROJECT_DIR,
        stdout=subprocess.PIPE,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    lines = completed.stdout.strip().splitlines()
    try:
        figures: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise RuntimeError(f"the benchmark's child failed ({completed.returncode}) without a result") from None
    return figures


def log_tail(log_path: Path) -> str:
    if not log_path.exists():
        return ""
    return log_path.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL_CHARS:]


def server_wait_until_ready(*, process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    with httpx.Client(base_url=base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ServerError(f"Daphne exited with {process.returncode}:\n{log_tail(log_path)}")
            try:
                if client.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise ServerError(f"Daphne did not answer within {SERVER_START_TIMEOUT_S:.0f} s:\n{log_tail(log_path)}")


def server_stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group we started, then SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=SERVER_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=SERVER_STOP_TIMEOUT_S)
    except ProcessLookupError:
        process.wait(timeout=SERVER_STOP_TIMEOUT_S)


@dataclass(frozen=True)
class RunningDaphne:
    base_url: str
    pid: int


@contextmanager
def daphne_process(*, environment: dict[str, str], log_path: Path) -> Iterator[RunningDaphne]:
    """One Daphne process serving ``telemed.asgi`` on a free local port with
    ``environment`` (the benchmark's settings), its output in ``log_path``;
    stopped on exit."""
    port = free_local_port()
    base_url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "telemed.asgi:application"]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_DIR,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        server_wait_until_ready(process=process, base_url=base_url, log_path=log_path)
        yield RunningDaphne(base_url=base_url, pid=process.pid)
    finally:
        server_stop(process)


@contextmanager
def embedded_server(*, log: bool = True) -> Iterator[RunningServer]:
    """Migrate, seed and collect static files into a fresh directory, start
    Daphne on a free port, yield once it answers; stop it and delete the
    directory on the way out, error or not."""
    with tempfile.TemporaryDirectory(prefix="telemed-bench-") as temporary:
        var_dir = Path(temporary)
        environment = embedded_environment(var_dir=var_dir)
        for arguments in (("migrate", "--noinput"), ("seed_demo",), ("collectstatic", "--noinput")):
            if log:
                print(f"  manage.py {' '.join(arguments)}", flush=True)
            manage_py_run(*arguments, environment=environment)

        port = free_local_port()
        base_url = f"http://127.0.0.1:{port}"
        log_path = var_dir / "daphne.log"
        command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "telemed.asgi:application"]
        if log:
            print(f"  daphne on {base_url}", flush=True)
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                command,
                cwd=PROJECT_DIR,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so stopping it stops any child too
            )
        try:
            server_wait_until_ready(process=process, base_url=base_url, log_path=log_path)
            yield RunningServer(base_url=base_url, pid=process.pid, var_dir=var_dir, log_path=log_path)
        finally:
            server_stop(process)


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far, from /proc (None elsewhere)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return None
    # Fields after the command name, which is in parentheses and may hold spaces.
    fields = stat.rsplit(")", 1)[1].split()
    user_ticks, system_ticks = int(fields[11]), int(fields[12])
    return (user_ticks + system_ticks) / os.sysconf("SC_CLK_TCK")


class Outcome(Protocol):
    """A benchmark's result: skipped (why), failed (why), or measured."""

    skipped: str | None
    error: str | None


OutcomeT = TypeVar("OutcomeT", bound=Outcome)

# Failures whose message says what went wrong by itself; any other expected
# failure is shown with its class name.
_SELF_EXPLAINED = (ServerError, RuntimeError, ValueError, KeyError)
_EXPECTED = (OSError, subprocess.SubprocessError)


def outcome_measure(
    result: OutcomeT,
    *,
    missing: str | None,
    needs: str,
    measure: Callable[[OutcomeT], None],
    expected: tuple[type[Exception], ...] = (),
) -> OutcomeT:
    """Run ``measure(result)`` unless a service is ``missing``; an expected
    failure becomes ``result.error``. Raises only on interruption (Ctrl-C,
    SIGTERM), after ``measure`` has cleaned up."""
    if missing:
        result.skipped = missing
        print(f"  skipped (it needs {needs}): {missing}", flush=True)
        return result
    other_failures: tuple[type[Exception], ...] = (*expected, *_EXPECTED)
    try:
        measure(result)
    except _SELF_EXPLAINED as error:
        result.error = str(error)
    except other_failures as error:
        result.error = f"{error.__class__.__name__}: {error}"
    if result.error:
        print(f"  failed: {result.error}", flush=True)
    return result
