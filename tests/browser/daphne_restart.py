"""A Daphne server that a test can restart mid-call, on the same port and the
same test database, as an operator's restart would: the first process is
killed (its sockets drop without a goodbye) and a second one takes the port.

Both processes are forked before Chromium starts (a process running
Playwright's threads should not fork): the second waits, without touching
the network, until the test asks for it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from functools import partial
from multiprocessing import Event
from typing import Any

from daphne.testing import DaphneProcess
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.db import connections
from django.test.utils import override_settings

from tests.services import require_postgres


def _fresh_executor_after_fork() -> None:
    """As in consult_helpers: the forked child needs its own executor for
    thread-sensitive sync code (every ``database_sync_to_async``)."""
    from asgiref.sync import SyncToAsync

    SyncToAsync.single_thread_executor = ThreadPoolExecutor(max_workers=1)


class StandbyDaphneProcess(DaphneProcess):  # type: ignore[misc]  # daphne is untyped
    """A Daphne process that starts serving only once ``go`` is set."""

    def __init__(self, *args: Any, go: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.go = go

    def run(self) -> None:
        self.go.wait()
        super().run()


def _free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RestartableServer:
    def __init__(self, first: DaphneProcess, second: StandbyDaphneProcess, port: int) -> None:
        self.processes = [first, second]
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.restarts = 0

    def restart(self, *, timeout_s: float = 30.0) -> None:
        """Kill the serving process (SIGKILL: no close frames, no cleanup,
        like a crash or an OOM kill) and start the standby on the same port."""
        if self.restarts:
            raise RuntimeError("one restart per server")
        first, second = self.processes
        first.kill()
        first.join(timeout=10)
        second.go.set()
        if not second.ready.wait(timeout=timeout_s):
            raise RuntimeError("the second Daphne did not start")
        self.restarts += 1


@contextmanager
def restartable_daphne(django_db_blocker: Any, **overrides: Any) -> Iterator[RestartableServer]:
    """Two Daphne processes forked now with ``overrides`` applied to their
    settings, on the test database: the first serves at once, the second
    takes the same port when ``restart()`` is called."""
    from channels.testing.live import make_application

    port = _free_port()
    application = partial(make_application, static_wrapper=ASGIStaticFilesHandler)
    first = DaphneProcess("127.0.0.1", application, setup=_fresh_executor_after_fork, port=port)
    second = StandbyDaphneProcess("127.0.0.1", application, setup=_fresh_executor_after_fork, port=port, go=Event())
    for process in (first, second):
        process.daemon = True
    with django_db_blocker.unblock():
        require_postgres()
        connections.close_all()  # the children must not share the parent's connection
        with override_settings(**overrides):
            first.start()
            second.start()
    try:
        if not first.ready.wait(timeout=30):
            raise RuntimeError("Daphne did not start")
        yield RestartableServer(first, second, port)
    finally:
        for process in (first, second):
            if process.is_alive():
                process.terminate()
            process.join(timeout=10)
