from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CareConfig(AppConfig):
    name = "apps.care"
    label = "care"
    verbose_name = _("Care")

    def ready(self) -> None:
        from apps.care import receivers  # noqa: F401  # referrals follow the appointments booked for them
