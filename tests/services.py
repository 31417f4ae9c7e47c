"""Real services for tests: PostgreSQL, Redis, Chromium, coturn.

A test that needs one asks for it here. Where the service is missing the
test is skipped with the reason on a developer's machine, and fails under
CI (CI=true), so that CI can never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import socket

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def service_missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI needs this service: {reason}", pytrace=False)
    pytest.skip(reason)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def redis_url() -> str:
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    if not port_open("127.0.0.1", 6379) and "127.0.0.1" in url:
        service_missing("Redis is not running on 127.0.0.1:6379")
    return url


def chromium_path() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.path.exists(candidate):
            return candidate
    service_missing("Chromium is not installed (apt-get install -y chromium)")
    raise AssertionError("unreachable")


def turnserver_path() -> str:
    for candidate in ("/usr/bin/turnserver", "/usr/sbin/turnserver", shutil.which("turnserver")):
        if candidate and os.path.exists(candidate):
            return candidate
    service_missing("coturn is not installed (apt-get install -y coturn)")
    raise AssertionError("unreachable")


def require_postgres() -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        service_missing("this test needs PostgreSQL: set DATABASE_URL=postgres://postgres@127.0.0.1:5432/telemed")
