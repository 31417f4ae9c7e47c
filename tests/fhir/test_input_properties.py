"""Random JSON at the FHIR input endpoints, and valid Observations with one
element replaced by random JSON: an answer below 500, always FHIR JSON (an
OperationOutcome when refused), never an exception."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from apps.accounts.models import User
from tests.fhir.conftest import FHIR_JSON, bearer
from tests.fhir.test_observation_create import bp

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
PATHS = [
    ("status",),
    ("code",),
    ("code", "coding"),
    ("code", "coding", 0, "code"),
    ("subject",),
    ("subject", "reference"),
    ("effectiveDateTime",),
    ("component",),
    ("component", 0),
    ("component", 0, "valueQuantity"),
    ("component", 0, "valueQuantity", "value"),
    ("component", 1, "valueQuantity", "code"),
    ("component", 1, "code", "coding", 0, "system"),
    ("note",),
    ("meta",),
    ("device",),
    ("extension",),
]


def _check(response: Any) -> None:
    assert response.status_code < 500, response.content
    data = json.loads(response.content)
    assert data["resourceType"] in {"OperationOutcome", "Observation", "Bundle"}
    if response.status_code >= 400:
        assert data["resourceType"] == "OperationOutcome"
        assert all(issue["diagnostics"] for issue in data["issue"])


@pytest.fixture
def token(alice: User) -> dict[str, str]:
    return bearer(alice)


@SETTINGS
@given(body=JSON)
@example(body={"resourceType": "Observation"})
@example(body={"resourceType": "Bundle", "type": "transaction", "entry": [None, 1, {"resource": []}]})
@example(body={"resourceType": "Bundle", "type": "batch", "entry": {"resource": {}}})
def test_random_json_is_refused_cleanly(client: Client, alice: User, token: dict[str, str], body: Any) -> None:
    for url in ("/fhir/Observation", "/fhir/"):
        _check(client.post(url, json.dumps(body), content_type=FHIR_JSON, **token))


@SETTINGS
@given(path=st.sampled_from(PATHS), value=JSON)
def test_a_damaged_observation_is_refused_cleanly(
    client: Client, alice: User, token: dict[str, str], path: tuple[Any, ...], value: Any
) -> None:
    body = copy.deepcopy(bp(alice))
    target: Any = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    _check(client.post("/fhir/Observation", json.dumps(body), content_type=FHIR_JSON, **token))
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"resource": body, "request": {"method": "POST", "url": "Observation"}}],
    }
    _check(client.post("/fhir/", json.dumps(bundle), content_type=FHIR_JSON, **token))
