"""FHIR OperationOutcome: how every refusal of the FHIR endpoints answers,
with a translated ``diagnostics`` text and, where it helps, the FHIRPath
``expression`` of the element at fault."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _
from pydantic import ValidationError


@dataclass(frozen=True)
class Issue:
    """One issue: ``code`` from the FHIR issue-type value set (invalid,
    required, value, code-invalid, not-supported, not-found, login,
    processing, too-costly, duplicate, informational…)."""

    code: str
    diagnostics: str
    expression: Sequence[str] = field(default_factory=tuple)
    severity: str = "error"


class FhirError(Exception):
    """A refusal answered with an OperationOutcome and ``status``."""

    def __init__(self, status: int, issues: Iterable[Issue]) -> None:
        self.status = status
        self.issues = list(issues)
        super().__init__(status)


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    rendered = []
    for issue in issues:
        item: dict[str, Any] = {"severity": issue.severity, "code": issue.code, "diagnostics": issue.diagnostics}
        if issue.expression:
            item["expression"] = list(issue.expression)
        rendered.append(item)
    return {"resourceType": "OperationOutcome", "issue": rendered}


def _path(root: str, location: Sequence[Any]) -> str:
    """A pydantic error location as FHIRPath: ``Observation.component[0].valueQuantity``."""
    path = root
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}"
    return path


def _message(error: Any) -> str:
    kind = str(error.get("type", ""))
    if kind in {"missing", "model_field_validation.missing"}:
        return _("This element is required.")
    if kind == "extra_forbidden":
        return _("This element is not part of the resource.")
    if kind.startswith("fhir-validation-wrong-resource-type"):
        return _("This is not the expected kind of resource.")
    if kind in {"list_type", "dict_type", "model_type", "model_attributes_type"}:
        return _("This element has the wrong shape (a list or an object was expected).")
    if "date" in kind.lower() or "DateTime" in str(error.get("msg", "")) or "Date " in str(error.get("msg", "")):
        return _("Not a valid date or time (FHIR format, with a time zone when a time is given).")
    if "decimal" in kind.lower() or "Decimal" in str(error.get("msg", "")):
        return _("Not a valid number.")
    if "bool" in kind:
        return _("Not a valid true/false value.")
    return _("Not a valid value for this element.")


def validation_issues(error: ValidationError, *, root: str) -> list[Issue]:
    """Translated issues of a fhir.resources (pydantic) validation error."""
    issues: list[Issue] = []
    for item in error.errors()[:50]:
        location = [part for part in item.get("loc", ()) if part != "__root__"]
        path = _path(root, location)
        issues.append(
            Issue("invalid" if item.get("type") != "missing" else "required", f"{path}: {_message(item)}", (path,))
        )
    return issues or [Issue("invalid", _("The resource is not valid FHIR."))]
