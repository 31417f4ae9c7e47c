"""The production headers, read off a real response from Daphne."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.core.test_settings import ROOT, manage, production_env
from tests.services import redis_url


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_production_response_carries_the_security_headers(tmp_path: Path) -> None:
    redis_url()
    env = production_env(tmp_path)
    assert manage(env, "collectstatic", "--noinput", "-v", "0").returncode == 0
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "telemed.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        headers = {"Host": "telemed.example.org"}
        deadline = time.monotonic() + 30
        while True:
            try:
                plain = httpx.get(base + "/accounts/login/", headers=headers)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "daphne did not start"
                time.sleep(0.2)
        # Plain HTTP is sent to HTTPS.
        assert plain.status_code == 301
        assert plain.headers["location"].startswith("https://telemed.example.org/")

        secure = httpx.get(base + "/accounts/login/", headers={**headers, "X-Forwarded-Proto": "https"})
        assert secure.status_code == 200
        h = secure.headers
        assert h["strict-transport-security"].startswith("max-age=31536000")
        assert "includeSubDomains" in h["strict-transport-security"]
        assert h["x-frame-options"] == "DENY"
        assert h["referrer-policy"] == "same-origin"
        assert h["x-content-type-options"] == "nosniff"
        csp = h["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        cookies = secure.headers.get_list("set-cookie")
        assert cookies, "the sign-in page sets the CSRF cookie"
        assert all("Secure" in cookie for cookie in cookies)
        # A request from a host we don't serve is refused.
        assert (
            httpx.get(
                base + "/accounts/login/", headers={"Host": "evil.example", "X-Forwarded-Proto": "https"}
            ).status_code
            == 400
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
