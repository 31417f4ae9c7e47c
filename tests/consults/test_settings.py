"""Consult settings fail loudly at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.test_settings import manage, production_env


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"ICE_TURN_URLS": "turn:turn.example.org:3478"}, "ICE_TURN_URLS needs TURN_SECRET"),
        ({"ICE_STUN_URLS": "turn.example.org:3478"}, "ICE_STUN_URLS holds stun:"),
        ({"ICE_TURN_URLS": "stun:turn.example.org", "TURN_SECRET": "s"}, "ICE_TURN_URLS holds turn:"),
        ({"CONSULT_WS_MAX_MESSAGE_BYTES": "100"}, "CONSULT_WS_MAX_MESSAGE_BYTES must be at least 4096"),
        ({"CONSULT_ICE_TRANSPORT_POLICY": "relay"}, "CONSULT_ICE_TRANSPORT_POLICY=relay needs ICE_TURN_URLS"),
        ({"CONSULT_ICE_TRANSPORT_POLICY": "turn-only"}, "CONSULT_ICE_TRANSPORT_POLICY must be one of all, relay"),
    ],
)
def test_it_refuses_a_bad_ice_or_limit_setting(tmp_path: Path, variables: dict[str, str], message: str) -> None:
    result = manage(production_env(tmp_path, **variables), "check")
    assert result.returncode != 0
    assert message in result.stderr


def test_it_accepts_turn_with_a_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "turn_secret"
    secret.write_text("a-long-random-secret\n", encoding="utf-8")
    env = production_env(
        tmp_path, ICE_TURN_URLS="turns:turn.example.org:443?transport=tcp", TURN_SECRET_FILE=str(secret)
    )
    result = manage(env, "shell", "-c", "from django.conf import settings; print(settings.TURN_SECRET)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "a-long-random-secret"
