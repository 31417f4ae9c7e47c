from __future__ import annotations

import time

from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.test import Client

from apps.accounts.models import User
from tests.factories import PASSWORD, TOTP_SECRET, UserFactory, enrol_totp


def test_the_site_admin_signs_in_to_the_admin_through_allauth_with_mfa(client: Client, db: None) -> None:
    admin: User = UserFactory(email="root@example.org", is_staff=True, is_superuser=True)
    enrol_totp(admin)
    response = client.get("/admin/", follow=True)
    # Django's admin login page hands over to allauth's.
    assert response.redirect_chain[-1][0].startswith("/accounts/login/")

    response = client.post("/accounts/login/?next=/admin/", {"login": "root@example.org", "password": PASSWORD})
    assert response["Location"].startswith("/accounts/2fa/authenticate/")
    code = format_hotp_value(hotp_value(TOTP_SECRET, int(time.time()) // 30))
    response = client.post("/accounts/2fa/authenticate/", {"code": code})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_the_site_admin_reading_a_patient_is_audited(alice: User) -> None:
    from apps.audit.models import AuditEvent

    admin: User = UserFactory(email="root@example.org", is_staff=True, is_superuser=True)
    enrol_totp(admin)
    client = Client()
    client.force_login(admin)
    response = client.get(f"/admin/accounts/patientprofile/{alice.patient_profile.pk}/change/")
    assert response.status_code == 200
    event = AuditEvent.objects.get(actor=admin, action="view", object_type="patientprofile")
    assert event.patient == alice
