"""Query expressions the apps share."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db.models.lookups import In


class IdIn(In):
    """``column IN (ids)`` for a long list of ids (e.g. a doctor's hundreds of
    patients), used as an expression: ``filter(IdIn(F("patient_id"), ids))``.

    PostgreSQL receives the ids as one array parameter (``column =
    ANY(%s::bigint[])``) rather than a placeholder per id: Django and psycopg
    skip preparing and quoting each id and PostgreSQL parsing a long list
    (about 2.5 ms a query for 550 ids), and the statement's text is the same
    whatever the ids. Other databases get the usual ``IN (…)``."""

    def get_prep_lookup(self) -> Any:
        if isinstance(self.rhs, (list, tuple, set, frozenset)):
            return [int(pk) for pk in self.rhs if pk is not None]
        return super().get_prep_lookup()

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        if not self.rhs_is_direct_value():
            return self.as_sql(compiler, connection)
        ids = list(dict.fromkeys(self.rhs))
        if not ids:
            raise EmptyResultSet
        lhs_sql, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs_sql} = ANY(%s::bigint[])", (*lhs_params, ids)
