"""Request types for views behind a sign-in check."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest

if TYPE_CHECKING:
    from apps.accounts.models import User


class AuthedRequest(HttpRequest):
    """A request whose user a decorator has already checked is signed in."""

    user: User  # narrower than HttpRequest.user (User | AnonymousUser)
