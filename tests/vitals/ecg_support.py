"""What the ECG recording tests share: a private storage of their own, ECG
files (record 100 in a zip, synthetic rhythms as the generic CSV) and
uploading through the page."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from tests.vitals.ecg import records

SYNTHETIC_RATE_HZ = 250


@pytest.fixture
def private_storage(settings: Any, tmp_path: Path) -> Iterator[Path]:
    """The default (private) storage in a folder of this test's own."""
    location = tmp_path / "private"
    location.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": location}},
    }
    yield location


def stored_files(location: Path) -> list[Path]:
    return sorted(path for path in location.rglob("*") if path.is_file())


def record_100_zip() -> bytes:
    """MIT-BIH record 100's .hea and .dat (apps/vitals/ecg/samples/mitdb/), zipped."""
    return records.wfdb_zip()


def synthetic_ecg(rr_s: Sequence[float], *, rate_hz: int = SYNTHETIC_RATE_HZ, seed: int = 7) -> bytes:
    """A single-lead CSV (mV) with a narrow QRS-like spike and a T wave at
    every beat of ``rr_s`` (seconds between beats), and a little noise."""
    generator = np.random.default_rng(seed)
    beats = np.cumsum(np.concatenate([[1.0], np.asarray(rr_s, dtype=float)]))
    total_s = float(beats[-1]) + 1.0
    t = np.arange(int(total_s * rate_hz)) / rate_hz
    samples = generator.normal(0.0, 0.01, t.size)
    for beat in beats:
        samples += 1.2 * np.exp(-0.5 * ((t - beat) / 0.012) ** 2)
        samples -= 0.15 * np.exp(-0.5 * ((t - beat - 0.03) / 0.01) ** 2)
        samples += 0.25 * np.exp(-0.5 * ((t - beat - 0.25) / 0.04) ** 2)
    return records.generic_csv(samples, rate_hz)


def regular_rhythm(rate_bpm: float, beats: int) -> list[float]:
    return [60.0 / rate_bpm] * beats


def irregular_rhythm(beats: int, *, seed: int = 3) -> list[float]:
    """RR intervals drawn at random between 0.55 and 1.05 s: irregularly
    irregular, as in atrial fibrillation (longest/shortest under 2.2, so
    that the signal-quality windows still count)."""
    generator = np.random.default_rng(seed)
    return list(generator.uniform(0.55, 1.05, beats))


def upload(
    client: Client,
    data: bytes,
    *,
    name: str = "ecg.zip",
    patient_id: int | None = None,
    xhr: bool = False,
    **extra: Any,
) -> Any:
    url = reverse("vitals:ecg_upload") if patient_id is None else reverse("vitals:ecg_staff_upload", args=[patient_id])
    headers = {"X-Requested-With": "XMLHttpRequest"} if xhr else {}
    return client.post(url, {"file": SimpleUploadedFile(name, data)}, headers=headers, **extra)
