"""The product's URLs plus ``POST /bench/insert/``, the booking benchmark's
baseline: a request through the same server and middleware that inserts one
row (into ``bench_insert``, a table the benchmark creates itself; no
migration) and answers 201."""

from __future__ import annotations

import json

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from telemed.urls import handler403, handler404, handler500
from telemed.urls import urlpatterns as product_urlpatterns

BARE_TABLE = "bench_insert"
BARE_TABLE_SQL = f"CREATE TABLE IF NOT EXISTS {BARE_TABLE} (id bigserial PRIMARY KEY, client integer NOT NULL)"


@csrf_exempt  # no session and no form: the baseline is the cheapest useful write
@require_POST
def bare_insert(request: HttpRequest) -> HttpResponse:
    try:
        client = int(json.loads(request.body)["client"])
    except (ValueError, TypeError, KeyError):
        return JsonResponse({"client": ["Send a JSON object with a whole number."]}, status=400)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {BARE_TABLE} (client) VALUES (%s) RETURNING id", [client])  # noqa: S608  # constant table name
        row = cursor.fetchone()
    return JsonResponse({"id": row[0] if row else None}, status=201)


urlpatterns = [path("bench/insert/", bare_insert, name="bench_insert"), *product_urlpatterns]

__all__ = ["handler403", "handler404", "handler500", "urlpatterns"]
