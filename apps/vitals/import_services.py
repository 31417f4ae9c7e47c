"""Importing a readings CSV: the preview (every row checked as
``reading_record`` would check it, by ``readings_check_many``, nothing
written) and the import itself,
all or nothing through ``readings_record_many`` (source ``csv``; audited and
alerting like any other reading). Between the two the upload waits in a
private file under ``TELEMED_VAR_DIR`` named by a signed token, deleted
after the import or within an hour.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core import signing
from django.utils.translation import gettext as _

from apps.accounts.models import User
from apps.vitals.csv_import import CsvParsed, CsvRow, RowError, field_column
from apps.vitals.kinds import kind_get
from apps.vitals.models import Source
from apps.vitals.services import (
    BatchRefused,
    ReadingInput,
    ReadingRefused,
    readings_check_many,
    readings_record_many,
)

UPLOAD_MAX_AGE_S = 3600
_SALT = "vitals.csv-import"
_NAME = re.compile(r"^[A-Za-z0-9_-]{20,40}$")


class ImportRefused(Exception):
    """Nothing was stored. ``code``: not_found (no access), no_consent,
    expired (the kept upload is gone), invalid (see ``errors``)."""

    def __init__(self, code: str, message: str = "", errors: list[RowError] | None = None) -> None:
        self.code = code
        self.message = message
        self.errors = errors or []
        super().__init__(code)


@dataclass(frozen=True)
class Duplicate:
    row: int
    first_row: int | None  # the earlier row of the same file, None: stored before


@dataclass
class ImportPreview:
    total: int
    rows: list[CsvRow]
    errors: list[RowError]
    new: int = 0
    duplicates: list[Duplicate] = field(default_factory=list)
    kinds: list[tuple[str, int]] = field(default_factory=list)  # label, rows

    @property
    def ok(self) -> bool:
        return not self.errors and self.new > 0

    @property
    def stored_before(self) -> int:
        return sum(1 for duplicate in self.duplicates if duplicate.first_row is None)

    @property
    def repeated(self) -> int:
        return sum(1 for duplicate in self.duplicates if duplicate.first_row is not None)


@dataclass(frozen=True)
class ImportResult:
    created: int
    duplicates: int
    alerts: int


def _item(*, patient: User, row: CsvRow) -> ReadingInput:
    return ReadingInput(
        patient=patient,
        kind=row.kind,
        values=row.values,
        measured_at=row.measured_at,
        source=Source.CSV,
        note=row.note,
        context=row.context,
        unit=row.unit,
    )


def _row_errors(row: CsvRow, errors: dict[str, list[str]]) -> list[RowError]:
    return [
        RowError(row=row.row, column=field_column(kind=row.kind, name=name), message=message)
        for name, messages in errors.items()
        for message in messages
    ]


def _sorted(errors: list[RowError]) -> list[RowError]:
    return sorted(errors, key=lambda error: error.row)


def readings_import_preview(
    *, by: User, patient: User, parsed: CsvParsed, now: datetime | None = None
) -> ImportPreview:
    """Check every readable row as ``reading_record`` would (plausibility,
    time, consent) and find the duplicates, stored before or repeated in
    the file. Writes nothing (but the audit of a refused access)."""
    errors = list(parsed.errors)
    try:
        checks = readings_check_many(by=by, items=[_item(patient=patient, row=row) for row in parsed.rows], now=now)
    except ReadingRefused as refused:  # not_found, no_consent
        raise ImportRefused(refused.code, refused.message) from None
    duplicates: list[Duplicate] = []
    for row, check in zip(parsed.rows, checks, strict=True):
        if check.errors:
            errors.extend(_row_errors(row, check.errors))
        elif check.repeats is not None:
            duplicates.append(Duplicate(row=row.row, first_row=parsed.rows[check.repeats].row))
        elif check.stored is not None:
            duplicates.append(Duplicate(row=row.row, first_row=None))
    counts = Counter(row.kind for row in parsed.rows)
    return ImportPreview(
        total=parsed.total,
        rows=parsed.rows,
        errors=_sorted(errors),
        new=sum(1 for check in checks if check.is_new),
        duplicates=sorted(duplicates, key=lambda duplicate: duplicate.row),
        kinds=[(str(kind_get(code).label), count) for code, count in counts.most_common()],
    )


def readings_import(*, by: User, patient: User, parsed: CsvParsed, now: datetime | None = None) -> ImportResult:
    """Record every row of the file, all or nothing (source ``csv``).
    Raises ImportRefused, with nothing stored, when a row is refused."""
    if parsed.errors:
        raise ImportRefused("invalid", errors=_sorted(parsed.errors))
    items = [_item(patient=patient, row=row) for row in parsed.rows]
    try:
        recorded = readings_record_many(by=by, items=items, now=now)
    except ReadingRefused as refused:  # a file of one row
        if refused.code in {"not_found", "no_consent"}:
            raise ImportRefused(refused.code, refused.message) from None
        raise ImportRefused("invalid", errors=_row_errors(parsed.rows[0], refused.errors)) from None
    except BatchRefused as refused:
        if refused.code in {"not_found", "no_consent"}:
            raise ImportRefused(refused.code) from None
        errors = [
            error
            for index, row_errors in refused.errors.items()
            for error in _row_errors(parsed.rows[index], row_errors)
        ]
        raise ImportRefused("invalid", errors=_sorted(errors)) from None
    created = sum(1 for one in recorded if one.created)
    return ImportResult(
        created=created,
        duplicates=len(recorded) - created,
        alerts=sum(1 for one in recorded if one.alert is not None),
    )


# --- The upload between the preview and the import ---------------------------


def _upload_dir() -> Path:
    directory = Path(settings.VAR_DIR) / "vitals-import"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory


def _sweep(directory: Path) -> None:
    """Forget uploads nobody confirmed within the hour."""
    oldest = time.time() - UPLOAD_MAX_AGE_S
    for path in directory.iterdir():
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < oldest:
                path.unlink()


def import_upload_keep(*, by: User, patient: User, data: bytes) -> str:
    """Keep ``data`` in a private file until the import; the signed token
    names it, for this user and this patient only."""
    directory = _upload_dir()
    _sweep(directory)
    name = secrets.token_urlsafe(18)
    descriptor = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    digest = hashlib.sha256(data).hexdigest()
    return signing.dumps({"f": name, "u": by.pk, "p": patient.pk, "h": digest}, salt=_SALT)


def _expired() -> ImportRefused:
    return ImportRefused("expired", _("This preview has expired. Upload the file again."))


def _upload_path(*, by: User, patient: User, token: str) -> tuple[Path, str]:
    try:
        payload = signing.loads(token, salt=_SALT, max_age=UPLOAD_MAX_AGE_S)
    except signing.BadSignature:  # also SignatureExpired
        raise _expired() from None
    if not isinstance(payload, dict) or payload.get("u") != by.pk or payload.get("p") != patient.pk:
        raise _expired()
    name = str(payload.get("f", ""))
    if not _NAME.match(name):
        raise _expired()
    return _upload_dir() / name, str(payload.get("h", ""))


def import_upload_take(*, by: User, patient: User, token: str) -> bytes:
    """The kept upload, which is deleted: the import reads it once."""
    path, digest = _upload_path(by=by, patient=patient, token=token)
    try:
        data = path.read_bytes()
    except OSError:
        raise _expired() from None
    with contextlib.suppress(OSError):
        path.unlink()
    if hashlib.sha256(data).hexdigest() != digest:
        raise _expired()
    return data
