from __future__ import annotations

import re

from django.core import mail
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User


def test_it_resets_a_forgotten_password_by_email(client: Client, alice: User) -> None:
    response = client.post(reverse("account_reset_password"), {"email": "alice@example.org"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"/accounts/password/reset/key/\S+", mail.outbox[0].body)
    assert link
    form = client.get(link.group(0), follow=True)
    assert form.status_code == 200
    done = client.post(
        form.redirect_chain[-1][0] if form.redirect_chain else link.group(0),
        {"password1": "a-brand-new-phrase-42", "password2": "a-brand-new-phrase-42"},
    )
    assert done.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("a-brand-new-phrase-42")


def test_it_does_not_reveal_unknown_addresses(client: Client, db: None) -> None:
    response = client.post(reverse("account_reset_password"), {"email": "nobody@example.org"})
    assert response.status_code == 302
    # The visitor sees the same page; the unknown address gets a notice, not a reset link.
    assert all("/password/reset/key/" not in message.body for message in mail.outbox)
