"""The product's URLs plus two bench-only endpoints, the booking benchmark's
baselines. Each inserts one row (into ``bench_insert``, a table the
benchmark creates itself; no migration) and answers 201:

- ``POST /bench/api/insert/``: a DRF view with the project's API defaults,
  exactly like ``POST /api/v1/appointments/``: personal access token
  authentication, ``IsAuthenticated``, the user throttle (Redis), JSON
  parsing and validation by a serializer, a JSON answer. The difference
  between it and a booking is the booking's own work.
- ``POST /bench/insert/``: a plain Django view (no authentication, no
  throttle, ``json.loads``): the cheapest useful write through the server
  and its middleware.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from telemed.urls import handler403, handler404, handler500
from telemed.urls import urlpatterns as product_urlpatterns

BARE_TABLE = "bench_insert"
BARE_TABLE_SQL = f"CREATE TABLE IF NOT EXISTS {BARE_TABLE} (id bigserial PRIMARY KEY, client integer NOT NULL)"
INSERT_SQL = f"INSERT INTO {BARE_TABLE} (client) VALUES (%s) RETURNING id"  # noqa: S608  # constant table name


def _insert(client: int) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute(INSERT_SQL, [client])
        row = cursor.fetchone()
    return row[0] if row else None


@csrf_exempt  # no session and no form: the baseline is the cheapest useful write
@require_POST
def bare_insert(request: HttpRequest) -> HttpResponse:
    try:
        client = int(json.loads(request.body)["client"])
    except (ValueError, TypeError, KeyError):
        return JsonResponse({"client": ["Send a JSON object with a whole number."]}, status=400)
    return JsonResponse({"id": _insert(client)}, status=201)


class BareInsertSerializer(serializers.Serializer[Any]):
    client = serializers.IntegerField()


class BareApiInsert(APIView):
    """The API's defaults (token authentication, throttle, JSON parser and
    renderer), as ``AppointmentListCreate`` has them, around one insert."""

    permission_classes = [IsAuthenticated]

    def post(self, request: Request) -> Response:
        body = BareInsertSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return Response({"id": _insert(body.validated_data["client"])}, status=201)


urlpatterns = [
    path("bench/insert/", bare_insert, name="bench_insert"),
    path("bench/api/insert/", BareApiInsert.as_view(), name="bench_api_insert"),
    *product_urlpatterns,
]

__all__ = ["handler403", "handler404", "handler500", "urlpatterns"]
