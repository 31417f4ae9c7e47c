"""`make run`'s last step: Daphne, worker and beat start, serve, and all stop on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.core.test_security_headers import _free_port
from tests.core.test_settings import ROOT


def _children(pid: int) -> list[int]:
    result = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(line) for line in result.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
    return bool(state) and not state.startswith("Z")


@pytest.mark.sqlite
def test_it_serves_the_sign_in_page_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"}}
    env["TELEMED_VAR_DIR"] = str(tmp_path)
    for step in (["migrate", "--noinput"], ["seed_demo", "--if-empty"], ["collectstatic", "--noinput", "-v", "0"]):
        done = subprocess.run([sys.executable, "manage.py", *step], cwd=ROOT, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    port = _free_port()
    runner = subprocess.Popen(
        [sys.executable, "manage.py", "run_embedded", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", follow_redirects=True)
                break
            except httpx.TransportError:
                assert runner.poll() is None, runner.stdout.read() if runner.stdout else ""
                assert time.monotonic() < deadline
                time.sleep(0.3)
        assert page.status_code == 200
        assert "/accounts/login/" in str(page.url)
        children = _children(runner.pid)
        assert len(children) == 3  # daphne, celery worker, celery beat
    finally:
        runner.send_signal(signal.SIGINT)
        output, _ = runner.communicate(timeout=30)
    assert runner.returncode == 0
    assert "telemed-demo-2026" in output  # the demo logins were printed
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in children):
        assert time.monotonic() < deadline, "a child process outlived Ctrl-C"
        time.sleep(0.2)
