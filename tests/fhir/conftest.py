"""FHIR test data: the vitals tests' world (Alice has an appointment with
Bob at Carol's clinic, a frozen "now"), helpers to call the endpoints with
a token, and validation of every answer with the R4B models."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client
from fhir.resources.R4B import get_fhir_model_class

from apps.accounts.models import User
from apps.accounts.tokens import token_create
from tests.vitals.conftest import _frozen_clock, appointment, dave  # noqa: F401  # the vitals world's fixtures

FHIR_JSON = "application/fhir+json"


def bearer(user: User, *, days: int | None = 30) -> dict[str, str]:
    _, raw = token_create(user=user, name="fhir", expires_in_days=days)
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def r4b(resource: dict[str, Any]) -> Any:
    """The resource parsed (and so validated) by its fhir.resources R4B model."""
    return get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def get(client: Client, url: str, user: User | None = None, **extra: Any) -> Any:
    headers = bearer(user) if user is not None else {}
    return client.get(url, HTTP_ACCEPT=FHIR_JSON, **headers, **extra)


def post(client: Client, url: str, body: Any, user: User | None = None, **extra: Any) -> Any:
    headers = bearer(user) if user is not None else {}
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(url, data, content_type=FHIR_JSON, HTTP_ACCEPT=FHIR_JSON, **headers, **extra)
