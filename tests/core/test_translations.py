"""The zh-hans catalog is complete: regenerating it from the code finds no
message without a translation."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest

from tests.core.test_settings import ROOT
from tests.services import service_missing

CATALOGS = ["django.po", "djangojs.po"]


def test_the_committed_catalog_has_no_gaps() -> None:
    for name in CATALOGS:
        path = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / name
        if not path.exists():
            continue
        catalog = polib.pofile(str(path))
        assert not catalog.untranslated_entries(), [e.msgid for e in catalog.untranslated_entries()][:10]
        assert not catalog.fuzzy_entries(), [e.msgid for e in catalog.fuzzy_entries()][:10]


def test_the_compiled_catalog_matches_the_source() -> None:
    po = polib.pofile(str(ROOT / "locale/zh_Hans/LC_MESSAGES/django.po"))
    mo = polib.mofile(str(ROOT / "locale/zh_Hans/LC_MESSAGES/django.mo"))
    compiled = {(e.msgctxt, e.msgid): (e.msgstr, tuple(sorted(e.msgstr_plural.items()))) for e in mo}
    for entry in po.translated_entries():
        assert compiled.get((entry.msgctxt, entry.msgid)) == (
            entry.msgstr,
            tuple(sorted((int(k), v) for k, v in entry.msgstr_plural.items())),
        ), f"django.mo is stale for {entry.msgid!r}: run make messages"


def test_every_message_in_the_code_is_translated(tmp_path: Path) -> None:
    if shutil.which("xgettext") is None:
        service_missing("GNU gettext is not installed (apt-get install -y gettext)")
    copy = tmp_path / "tree"
    for part in ("apps", "templates", "telemed", "static/js", "locale"):
        shutil.copytree(ROOT / part, copy / part)
    shutil.copy(ROOT / "manage.py", copy / "manage.py")
    for domain in ("django", "djangojs"):
        result = subprocess.run(
            [sys.executable, "manage.py", "makemessages", "-d", domain, "-l", "zh_Hans", "--no-obsolete"],
            cwd=copy,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
    for name in CATALOGS:
        path = copy / "locale" / "zh_Hans" / "LC_MESSAGES" / name
        if not path.exists():
            continue
        catalog = polib.pofile(str(path))
        missing = [e.msgid for e in catalog.untranslated_entries()] + [e.msgid for e in catalog.fuzzy_entries()]
        assert not missing, f"untranslated in {name} (run make messages and translate): {missing[:15]}"


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_pages_render_in_each_language(client: object, db: None, language: str) -> None:
    from django.test import Client

    page = Client().get("/accounts/signup/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert f'<html lang="{language}">' in page
    assert ("创建账户" if language == "zh-hans" else "Create an account") in page
