"""The chart's form: a doctor's target for one value of one kind of reading."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.vitals.chart import UNBANDED
from apps.vitals.kinds import GLUCOSE, KINDS, Kind, ValueField, limits_in, to_canonical

# Values with bands of their own: the pulse taken with a blood pressure
# has no rule (its heart rate is a kind of its own).
_NOT_TARGETED = frozenset({"pulse"})


def target_choices() -> list[tuple[str, str]]:
    return [
        (f"{kind.code}.{value_field.name}", f"{kind.label}: {value_field.label}")
        for kind in KINDS.values()
        if kind.code not in UNBANDED
        for value_field in kind.fields
        if value_field.name not in _NOT_TARGETED
    ]


class TargetForm(forms.Form):
    """Lowest and highest value (either may be empty) in the unit the
    doctor reads; stored in the kind's canonical unit."""

    value = forms.ChoiceField(label=_("Value"))
    low = forms.DecimalField(label=_("Lowest"), required=False, max_digits=7, decimal_places=2)
    high = forms.DecimalField(label=_("Highest"), required=False, max_digits=7, decimal_places=2)

    def __init__(self, *args: Any, glucose_unit: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.glucose_unit = glucose_unit
        value = self.fields["value"]
        assert isinstance(value, forms.ChoiceField)
        value.choices = target_choices()
        for name in ("low", "high"):
            self.fields[name].widget.attrs.update({"inputmode": "decimal", "step": "any"})

    def kind_and_field(self) -> tuple[Kind, ValueField]:
        code, name = self.cleaned_data["value"].split(".", 1)
        kind = KINDS[code]
        return kind, kind.field(name)

    def _unit(self, kind: Kind) -> str:
        return self.glucose_unit if kind is GLUCOSE else ""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        kind, value_field = self.kind_and_field()
        low, high = cleaned.get("low"), cleaned.get("high")
        if low is None and high is None:
            raise forms.ValidationError(_("Give a lowest value, a highest value or both."), code="empty")
        lowest, highest = limits_in(value_field, self._unit(kind))
        for name, number in (("low", low), ("high", high)):
            if number is not None and not lowest <= number <= highest:
                self.add_error(
                    name,
                    _("Give a value from %(low)s to %(high)s.") % {"low": lowest, "high": highest},
                )
        if low is not None and high is not None and low >= high:
            self.add_error("high", _("The lowest value must be below the highest."))
        return cleaned

    def canonical(self, number: Decimal | None) -> Decimal | None:
        """``number`` as the service stores it (glucose in mmol/L)."""
        if number is None:
            return None
        kind, value_field = self.kind_and_field()
        return to_canonical(kind=kind, name=value_field.name, value=number, unit=self._unit(kind))
