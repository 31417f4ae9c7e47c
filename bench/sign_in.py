"""Sign the demo patient in over plain HTTP, as a browser would."""

from __future__ import annotations

import re

import httpx

LOGIN_PATH = "/accounts/login/"
HOME_PATH = "/"
DEMO_PATIENT_EMAIL = "zhang.wei@example.org"
DEMO_PASSWORD = "telemed-demo-2026"  # noqa: S105  # the published demo password (apps/core/demo.py)
SESSION_COOKIE = "sessionid"
CSRF_COOKIE = "csrftoken"

_CSRF_FIELD_PATTERN = re.compile(r"""name=["']csrfmiddlewaretoken["']\s+value=["']([^"']+)["']""")


class SignInError(RuntimeError):
    """The demo patient could not be signed in."""


def patient_sign_in(*, base_url: str, email: str = DEMO_PATIENT_EMAIL, password: str = DEMO_PASSWORD) -> dict[str, str]:
    """Post the sign-in form and return the cookies of the signed-in session
    (``sessionid`` and ``csrftoken``), checked by loading the home page."""
    with httpx.Client(base_url=base_url, timeout=10.0, follow_redirects=False) as client:
        form_page = client.get(LOGIN_PATH)
        if form_page.status_code != 200:
            raise SignInError(f"GET {LOGIN_PATH} answered {form_page.status_code}")
        match = _CSRF_FIELD_PATTERN.search(form_page.text)
        if match is None or CSRF_COOKIE not in client.cookies:
            raise SignInError(f"GET {LOGIN_PATH} gave no CSRF token")
        signed_in = client.post(
            LOGIN_PATH,
            data={"login": email, "password": password, "csrfmiddlewaretoken": match.group(1)},
            headers={"Referer": base_url + LOGIN_PATH},
        )
        if signed_in.status_code != 302 or SESSION_COOKIE not in client.cookies:
            raise SignInError(f"POST {LOGIN_PATH} answered {signed_in.status_code} without a session")
        home = client.get(HOME_PATH)
        if home.status_code != 200:
            where = home.headers.get("location", "")
            raise SignInError(f"GET {HOME_PATH} as the signed-in patient answered {home.status_code} {where}".rstrip())
        return {name: client.cookies[name] for name in (SESSION_COOKIE, CSRF_COOKIE)}
