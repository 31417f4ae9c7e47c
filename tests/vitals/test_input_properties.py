"""Random input at the readings API and the quick-entry form (the CSV, ECG
files and uploads have their own property tests): an answer of the API's
own (201, 200, 400, 403, 404) or the form shown again, never a 500, and a
refused body stores nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.accounts.models import User
from apps.accounts.tokens import token_create
from apps.vitals.kinds import KINDS
from apps.vitals.models import Reading

Login = Callable[[User], Client]
pytestmark = pytest.mark.sqlite
API = "/api/v1/readings/"
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)

FORM_FIELDS = [
    *("systolic", "diastolic", "pulse", "glucose", "spo2", "temperature", "weight", "height", "heart_rate"),
    *("measured_at", "note", "context", "unit"),
]

_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["120", "7,2", "1e400", "NaN", "-0", "2026-12-01T07:55:00+08:00", "2026-13-45", "mg/dL"]),
)
_json = st.recursive(
    _scalar,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
_reading = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.one_of(st.sampled_from(sorted(KINDS)), _scalar),
        "values": st.one_of(
            st.dictionaries(
                st.sampled_from(["systolic", "diastolic", "pulse", "glucose", "spo2", "temperature", "weight", "x"]),
                _scalar,
                max_size=4,
            ),
            _json,
        ),
        "measured_at": _scalar,
        "source": st.one_of(st.sampled_from(["api", "device", "manual", "staff"]), _scalar),
        "unit": _scalar,
        "context": _scalar,
        "note": _scalar,
        "patient": _scalar,
    },
)


@pytest.fixture
def bearer(alice: User) -> dict[str, str]:
    _, raw = token_create(user=alice, name="gateway", expires_in_days=1)
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@SETTINGS
@given(body=st.one_of(_reading, st.lists(_reading, max_size=3), _json))
def test_it_answers_random_json_at_the_api_without_a_500(client: Client, bearer: dict[str, str], body: Any) -> None:
    before = Reading.objects.count()
    response = client.post(API, json.dumps(body), content_type="application/json", **bearer)
    assert response.status_code in (200, 201, 400, 403, 404), (body, response.status_code)
    if response.status_code >= 400:
        assert Reading.objects.count() == before


@SETTINGS
@given(data=st.binary(max_size=200))
def test_it_answers_random_bytes_at_the_api_without_a_500(client: Client, bearer: dict[str, str], data: bytes) -> None:
    response = client.post(API, data, content_type="application/json", **bearer)
    assert response.status_code in (200, 201, 400, 403, 404, 415), response.status_code


@SETTINGS
@given(
    kind=st.sampled_from(sorted(KINDS)),
    form=st.dictionaries(
        st.sampled_from(FORM_FIELDS),
        st.one_of(st.text(max_size=30), st.sampled_from(["120", "7,2", "1e400", "NaN", "2026-12-01T07:55"])),
        max_size=8,
    ),
)
def test_it_answers_random_forms_at_the_quick_entry_without_a_500(
    login: Login, alice: User, kind: str, form: dict[str, str]
) -> None:
    response = login(alice).post(reverse("vitals:entry", args=[kind]), form)
    assert response.status_code in (200, 302, 400), (form, response.status_code)
