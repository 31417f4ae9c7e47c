"""Request types for views behind a sign-in check, and reading a request's
parameters."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from django.http import HttpRequest

if TYPE_CHECKING:
    from apps.accounts.models import User


class AuthedRequest(HttpRequest):
    """A request whose user a decorator has already checked is signed in."""

    user: User  # narrower than HttpRequest.user (User | AnonymousUser)


def date_param(raw: str | None) -> date | None:
    """A ``YYYY-MM-DD`` parameter as a date; None when missing or not a date."""
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None
