"""Real Celery worker processes for tests, on Redis and the test database.

``celery_worker_process()`` starts ``celery -A telemed worker`` as a
subprocess that shares the test's PostgreSQL database (the one pytest-django
created) and a Redis broker. A worker is another process with its own
database connection, so:

* tests that use a real worker must be marked
  ``@pytest.mark.django_db(transaction=True)`` (or request the
  ``start_celery_worker`` fixture, which asks for ``transactional_db``): rows
  the test creates inside an uncommitted test transaction are invisible to
  the worker;
* they need PostgreSQL (they skip on SQLite, and fail under CI=true);
* to send tasks to the worker, the test process must not run them eagerly
  and must publish to Redis: use the ``celery_to_redis`` fixture, and route
  each task to the worker's own queue with ``apply_async(queue=worker.queue)``.

Each worker consumes a queue of its own (unique per call unless named), which
is purged before the worker starts, so no test sees another's messages.
``wait_until()`` polls the database (or anything else) for the worker's effect.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Protocol
from urllib.parse import quote

from tests.services import redis_url, require_postgres

ROOT = Path(__file__).resolve().parents[2]


class CeleryWorker:
    """A running ``celery worker`` subprocess in a process group of its own."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        *,
        queues: tuple[str, ...],
        hostname: str,
        broker_url: str,
        log: IO[bytes],
    ) -> None:
        self.process = process
        self.queues = queues
        self.queue = queues[0]
        self.hostname = hostname
        self.broker_url = broker_url
        self.log_path = Path(log.name)
        self._log = log

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        """The main worker process is still running."""
        return self.process.poll() is None

    def group_pids(self) -> list[int]:
        """Live (non-zombie) processes of the worker's group: the main process
        and, with the prefork pool, its children."""
        return _live_pids_in_group(self.process.pid)

    def output(self) -> str:
        """What the worker wrote to stdout and stderr so far."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout_s: float = 60) -> None:
        """Wait until the worker answers a remote-control ping (it consumes its queues)."""
        from telemed.celery import app

        deadline = time.monotonic() + timeout_s
        with app.connection_for_write(self.broker_url) as connection:
            while True:
                if not self.alive():
                    raise AssertionError(f"the worker died while starting:\n{self.output()}")
                replies = app.control.ping(destination=[self.hostname], timeout=0.5, connection=connection)
                if any(self.hostname in reply for reply in replies):
                    return
                if time.monotonic() >= deadline:
                    raise AssertionError(f"the worker was not ready after {timeout_s:g} s:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash or an OOM kill would,
        and wait until none of its processes is alive."""
        _signal_group(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self._wait_group_gone(timeout_s=10)

    def stop(self, timeout_s: float = 20) -> None:
        """Warm shutdown (SIGTERM to the main process), then SIGKILL whatever is left."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout_s)
        if self.alive() or self.group_pids():
            self.kill()
        self._log.close()

    def _wait_group_gone(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while pids := self.group_pids():
            if time.monotonic() >= deadline:
                raise AssertionError(f"worker processes {pids} outlived SIGKILL")
            time.sleep(0.05)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _live_pids_in_group(pgid: int) -> list[int]:
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: ask the kernel whether the group exists
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    pids = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may contain spaces and parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state not in {"Z", "X"}:
            pids.append(int(entry.name))
    return sorted(pids)


class StartWorker(Protocol):
    """The ``start_celery_worker`` fixture: ``start_worker`` whose workers the fixture stops."""

    def __call__(
        self,
        env_overrides: Mapping[str, object] | None = None,
        *,
        queue: str | None = None,
        queues: Sequence[str] | None = None,
        pool: str = "prefork",
        concurrency: int = 1,
        loglevel: str = "WARNING",
        wait_ready: bool = True,
    ) -> CeleryWorker: ...


def unique_queue_name() -> str:
    return f"test-{os.getpid()}-{uuid.uuid4().hex[:12]}"


def purge_queues(broker_url: str, queues: Sequence[str]) -> None:
    from telemed.celery import app

    with app.connection_for_write(broker_url) as connection:
        channel = connection.default_channel
        for queue in queues:
            channel.queue_purge(queue)


def worker_env(env_overrides: Mapping[str, object] | None = None) -> dict[str, str]:
    """The environment of a worker that shares this test's database and Redis."""
    from django.conf import settings

    require_postgres()
    broker = redis_url()
    db = settings.DATABASES["default"]
    user = quote(str(db.get("USER") or ""), safe="")
    password = quote(str(db.get("PASSWORD") or ""), safe="")
    credentials = f"{user}:{password}@" if password else f"{user}@" if user else ""
    env = {
        k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "SECRET_KEY_FILE", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env["DATABASE_URL"] = f"postgres://{credentials}{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env["REDIS_URL"] = broker
    # A worker that runs tasks eagerly would run the tasks its tasks send inline.
    env["CELERY_TASK_ALWAYS_EAGER"] = "false"
    env["PYTHONUNBUFFERED"] = "1"
    for key, value in (env_overrides or {}).items():
        env[key] = str(value)
    return env


def start_worker(
    env_overrides: Mapping[str, object] | None = None,
    *,
    queue: str | None = None,
    queues: Sequence[str] | None = None,
    pool: str = "prefork",
    concurrency: int = 1,
    loglevel: str = "WARNING",
    wait_ready: bool = True,
) -> CeleryWorker:
    """Start a worker; the caller must ``stop()`` it (see ``celery_worker_process``).

    It consumes ``queue`` and ``queues`` (a fresh unique queue when neither is
    given); ``worker.queue`` is the first of them. The queues are purged first.
    """
    env = worker_env(env_overrides)
    names = tuple(dict.fromkeys([*([queue] if queue else []), *(queues or [])])) or (unique_queue_name(),)
    broker = env["REDIS_URL"]
    purge_queues(broker, names)
    hostname = f"test-{os.getpid()}-{uuid.uuid4().hex[:8]}@%h"
    log = tempfile.NamedTemporaryFile(prefix="celery-worker-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "telemed",
            "worker",
            f"--pool={pool}",
            f"--concurrency={concurrency}",
            "-Q",
            ",".join(names),
            "--without-gossip",
            "--without-mingle",
            f"--loglevel={loglevel}",
            "-n",
            hostname,
        ],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: kill() reaches the prefork children too
    )
    worker = CeleryWorker(
        process, queues=names, hostname=hostname.replace("%h", os.uname().nodename), broker_url=broker, log=log
    )
    try:
        if wait_ready:
            worker.wait_ready()
    except BaseException:
        worker.stop()
        worker.log_path.unlink(missing_ok=True)
        raise
    return worker


@contextmanager
def celery_worker_process(
    env_overrides: Mapping[str, object] | None = None,
    *,
    queue: str | None = None,
    queues: Sequence[str] | None = None,
    pool: str = "prefork",
    concurrency: int = 1,
    loglevel: str = "WARNING",
    wait_ready: bool = True,
) -> Iterator[CeleryWorker]:
    """A real worker for the duration of the ``with`` block; always stopped afterwards."""
    worker = start_worker(
        env_overrides,
        queue=queue,
        queues=queues,
        pool=pool,
        concurrency=concurrency,
        loglevel=loglevel,
        wait_ready=wait_ready,
    )
    try:
        yield worker
    finally:
        worker.stop()
        worker.log_path.unlink(missing_ok=True)


def wait_until(
    predicate: Callable[[], object],
    timeout_s: float = 30,
    message: str = "the condition did not become true",
    *,
    interval_s: float = 0.1,
    worker: CeleryWorker | None = None,
) -> None:
    """Poll ``predicate`` until it returns something truthy.

    With ``worker``, fail at once if the worker died, showing its output.
    """
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if worker is not None and not worker.alive():
            raise AssertionError(f"{message}: the worker died (exit {worker.process.returncode}):\n{worker.output()}")
        if time.monotonic() >= deadline:
            detail = f"\nworker output:\n{worker.output()}" if worker is not None else ""
            raise AssertionError(f"{message} (after {timeout_s:g} s){detail}")
        time.sleep(interval_s)
