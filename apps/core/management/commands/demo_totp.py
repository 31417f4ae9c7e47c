from __future__ import annotations

import time
from typing import Any

from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from allauth.mfa.utils import decrypt
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.core import demo


class Command(BaseCommand):
    help = "Print the current TOTP code of a demo staff account (embedded mode only)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("email")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("demo_totp is for the embedded demo only")
        authenticator = Authenticator.objects.filter(user__email=options["email"], type=Authenticator.Type.TOTP).first()
        if authenticator is None:
            raise CommandError("no TOTP authenticator for that email")
        secret = decrypt(authenticator.data["secret"])
        if secret != demo.DEMO_TOTP_SECRET:
            raise CommandError("that account's authenticator is not the demo one")
        self.stdout.write(format_hotp_value(hotp_value(secret, int(time.time()) // 30)))
