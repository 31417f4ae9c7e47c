"""allauth MFA adapter: TOTP secrets and recovery-code seeds are stored
encrypted (Fernet), so a database dump alone does not give away anyone's
second factor. The key comes from MFA_ENCRYPTION_KEY (production) or the
embedded secret key."""

from __future__ import annotations

import base64
import hashlib
from functools import cache

from allauth.mfa.adapter import DefaultMFAAdapter
from cryptography.fernet import Fernet
from django.conf import settings


@cache
def _fernet(secret: str) -> Fernet:
    digest = hashlib.sha256(b"telemed-mfa-secrets:" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


class MFAAdapter(DefaultMFAAdapter):
    def encrypt(self, text: str) -> str:
        return _fernet(settings.MFA_ENCRYPTION_KEY).encrypt(text.encode()).decode()

    def decrypt(self, encrypted_text: str) -> str:
        return _fernet(settings.MFA_ENCRYPTION_KEY).decrypt(encrypted_text.encode()).decode()
