"""Signing out closes the consult sockets opened with that session."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

from apps.consults.broadcast import SIGNED_OUT, publish, session_digest, user_group


@receiver(user_logged_out, dispatch_uid="telemed_consults_close_sockets")
def on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is None:
        return
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    # Without a session to name, every consult socket of the user closes.
    publish(user_group(user.pk), {"type": SIGNED_OUT, "session": session_digest(session_key) if session_key else None})
