"""IdIn: ``column IN (ids)`` sent to PostgreSQL as one array."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import User
from apps.core.lookups import IdIn

pytestmark = pytest.mark.sqlite


def test_it_finds_the_same_rows_as_in(alice: User, bob: User, carol: User, mallory: User) -> None:
    ids = [alice.pk, carol.pk, carol.pk, 10**9]
    expected = set(User.objects.filter(pk__in=ids).values_list("pk", flat=True))
    assert (
        set(User.objects.filter(IdIn(F("pk"), ids)).values_list("pk", flat=True))
        == expected
        == {
            alice.pk,
            carol.pk,
        }
    )
    assert set(User.objects.exclude(IdIn(F("pk"), ids)).values_list("pk", flat=True)) >= {bob.pk, mallory.pk}


def test_no_ids_match_nothing(alice: User) -> None:
    assert list(User.objects.filter(IdIn(F("pk"), []))) == []
    assert User.objects.filter(IdIn(F("pk"), [])).count() == 0


def test_it_sends_one_parameter_on_postgresql(alice: User, bob: User) -> None:
    with CaptureQueriesContext(connection) as queries:
        # User ids pass 600 when the whole suite runs: two known ones are in the list.
        assert User.objects.filter(IdIn(F("pk"), [*range(1, 600), alice.pk, bob.pk])).count() >= 2
    sql = queries[0]["sql"]
    if connection.vendor == "postgresql":
        assert "= ANY(" in sql
        assert " IN (" not in sql
