from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConsultsConfig(AppConfig):
    name = "apps.consults"
    label = "consults"
    verbose_name = _("Consults")

    def ready(self) -> None:
        from apps.consults import receivers  # noqa: F401  # closes a signed-out session's consult sockets
