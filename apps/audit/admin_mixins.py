"""Site-admin pages that show personal or health data record their reads and
writes in the audit log, like every other page does."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest, HttpResponse

from apps.audit.models import AuditAction
from apps.audit.services import audit_record


class AuditedModelAdmin(admin.ModelAdmin[Any]):
    audit_object_type = ""

    def audit_patient(self, obj: models.Model) -> Any:
        """The patient whose data ``obj`` is, if any."""
        return None

    def _audit(self, request: HttpRequest, action: str, obj: models.Model) -> None:
        audit_record(
            action=action,
            actor=request.user,  # type: ignore[arg-type]  # admin views need a signed-in user
            object_type=self.audit_object_type or obj._meta.model_name or "",
            object_id=obj.pk,
            patient=self.audit_patient(obj),
            reason="site admin",
        )

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if request.method == "GET":
            obj = self.get_object(request, object_id)
            if obj is not None:
                self._audit(request, AuditAction.VIEW, obj)
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        self._audit(request, AuditAction.UPDATE if change else AuditAction.CREATE, obj)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self._audit(request, AuditAction.DELETE, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            self._audit(request, AuditAction.DELETE, obj)
        super().delete_queryset(request, queryset)
