from __future__ import annotations

import time
from typing import Any

import pytest
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

from apps.clinics.models import Clinic
from tests.factories import PASSWORD, make_doctor

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_doctor_without_mfa_enrols_and_reaches_the_dashboard(live_server: Any, desktop_page: Any) -> None:
    doctor = make_doctor(clinic=Clinic.objects.create(name="Hillside Clinic"), mfa=False, email="dr.new@example.org")
    page = desktop_page
    page.goto(live_server.url + "/accounts/login/")
    page.locator("input[name=login]").fill(doctor.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("main form button[type=submit]").click()

    # Sent to enrolment; allauth first asks to confirm the password.
    page.wait_for_url("**/accounts/reauthenticate/**")
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url("**/accounts/2fa/totp/activate/")

    # Any other staff page sends them back here until they enrol.
    page.goto(live_server.url + "/")
    page.wait_for_url("**/accounts/2fa/totp/activate/")

    secret = page.locator("#authenticator_secret").input_value()
    code = format_hotp_value(hotp_value(secret, int(time.time()) // 30))
    page.locator("input[name=code]").fill(code)
    page.locator("main form button[type=submit]").click()
    page.wait_for_load_state()

    page.goto(live_server.url + "/")
    assert page.locator("h1").inner_text() == "Dashboard"
    # The doctor's dashboard, not the admin's page.
    assert page.locator("#referrals h2").inner_text() == "Referrals to me"
