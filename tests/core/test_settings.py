from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from telemed.env import env_bool, env_int, env_list, env_secret, env_url

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_SECRET = "t3lemed-production-test-key-9f8e7d6c5b4a39281706f5e4d3c2b1a0"


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE"))
    }
    env.update(
        {
            "SECRET_KEY": PRODUCTION_SECRET,
            "ALLOWED_HOSTS": "telemed.example.org",
            "DATABASE_URL": os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/telemed",
            "REDIS_URL": os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
            "EMAIL_HOST": "smtp.example.org",
            "SMS_BACKEND": "http",
            "SMS_HTTP_URL": "https://sms.example.org/send",
            "SMS_HTTP_API_KEY": "key",
            "SITE_URL": "https://telemed.example.org",
            "MFA_ENCRYPTION_KEY": "m" + "f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1",
            "TELEMED_VAR_DIR": str(tmp_path / "var"),
            "DJANGO_SETTINGS_MODULE": "telemed.settings",
        }
    )
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_deploy_check_passes_with_production_settings(tmp_path: Path) -> None:
    result = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_needs_allowed_hosts(tmp_path: Path) -> None:
    result = manage(production_env(tmp_path, ALLOWED_HOSTS=""), "check")
    assert result.returncode != 0
    assert "ALLOWED_HOSTS must list" in result.stderr


def test_production_refuses_a_short_secret_key(tmp_path: Path) -> None:
    result = manage(production_env(tmp_path, SECRET_KEY="short"), "check")
    assert "SECRET_KEY must be at least 50 characters" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DATABASE_URL", "sqlite:///tmp/x.sqlite3", "DATABASE_URL must point at PostgreSQL"),
        ("REDIS_URL", "", "REDIS_URL must point at Redis"),
        ("SITE_URL", "http://telemed.example.org", "SITE_URL must be the site's https://"),
        ("SMS_BACKEND", "console", "production needs EMAIL_HOST (SMTP) and SMS_BACKEND=http"),
        ("EMAIL_HOST", "", "production needs EMAIL_HOST"),
        ("DEFAULT_USER_TIME_ZONE", "Asia/Shangai", "DEFAULT_USER_TIME_ZONE must be an IANA time zone"),
        ("SMS_DEFAULT_REGION", "cn", "SMS_DEFAULT_REGION must be a region code"),
    ],
)
def test_production_refuses_a_bad_or_missing_setting(tmp_path: Path, variable: str, value: str, message: str) -> None:
    result = manage(production_env(tmp_path, **{variable: value}), "check")
    assert result.returncode != 0
    assert message in result.stderr


def test_production_refuses_debug(tmp_path: Path) -> None:
    result = manage(production_env(tmp_path, DEBUG="true"), "check")
    assert "DEBUG must be off" in result.stderr


@pytest.mark.sqlite
def test_env_bool_rejects_a_typo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAG", "ture")
    with pytest.raises(ImproperlyConfigured, match="FLAG must be one of"):
        env_bool("FLAG", default=False)
    monkeypatch.setenv("FLAG", "Yes")
    assert env_bool("FLAG", default=False) is True


def test_env_int_checks_type_and_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "eighty")
    with pytest.raises(ImproperlyConfigured, match="PORT must be an integer"):
        env_int("PORT", 1)
    monkeypatch.setenv("PORT", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env_int("PORT", 1, minimum=1)
    monkeypatch.delenv("PORT")
    assert env_int("PORT", 25) == 25


def test_env_list_rejects_empty_items(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTS", "a.example,,b.example")
    with pytest.raises(ImproperlyConfigured):
        env_list("HOSTS", [])
    monkeypatch.setenv("HOSTS", "a.example, b.example")
    assert env_list("HOSTS", []) == ["a.example", "b.example"]


def test_env_secret_reads_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "key"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("API_KEY_FILE", str(secret))
    assert env_secret("API_KEY") == "from-a-file"
    monkeypatch.setenv("API_KEY", "direct")
    with pytest.raises(ImproperlyConfigured, match="not both"):
        env_secret("API_KEY")
    monkeypatch.delenv("API_KEY")
    monkeypatch.setenv("API_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="not a readable file"):
        env_secret("API_KEY")


def test_env_url_checks_the_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://db/telemed")
    with pytest.raises(ImproperlyConfigured, match="postgres://"):
        env_url("DATABASE_URL", ("postgres", "postgresql"))
