from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class VitalsConfig(AppConfig):
    name = "apps.vitals"
    label = "vitals"
    verbose_name = _("Vitals")
