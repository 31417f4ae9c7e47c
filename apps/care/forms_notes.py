"""Forms of the note editor: they parse what the page posts; the rules
(who, when, what a signed note allows) are in services_notes."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.care.icd10 import CODE_MAX_LENGTH
from apps.care.models import ConsultNote
from apps.care.services_notes import ADDENDUM_MAX_LENGTH, FOLLOW_UP_MAX_DAYS, TEXT_FIELDS, TEXT_MAX_LENGTH
from apps.scheduling.models import ConsultMode


def _text(label: Any, rows: int = 4, help_text: Any = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        max_length=TEXT_MAX_LENGTH,
        strip=False,
        help_text=help_text,
        widget=forms.Textarea(attrs={"rows": rows, "maxlength": TEXT_MAX_LENGTH}),
    )


class NoteDraftForm(forms.Form):
    """The draft's fields and the version the page holds."""

    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    subjective = _text(_("Subjective"), help_text=_("What the patient reports."))
    objective = _text(_("Objective"), rows=5, help_text=_("Readings, examination, results."))
    assessment = _text(_("Assessment"))
    plan = _text(_("Plan"))
    medications = _text(_("Medications"), rows=3, help_text=_("One per line: name, dose, how often, for how long."))
    advice = _text(_("Advice"), rows=3)
    patient_summary = _text(
        _("Summary for the patient"),
        help_text=_("The plan and instructions in plain words, in the patient's language. The patient reads this."),
    )
    follow_up_after_days = forms.IntegerField(
        label=_("Follow up after (days)"), required=False, min_value=1, max_value=FOLLOW_UP_MAX_DAYS
    )

    FIELDS = (*TEXT_FIELDS, "follow_up_after_days")

    @classmethod
    def for_note(cls, note: ConsultNote) -> NoteDraftForm:
        initial = {name: getattr(note, name) for name in cls.FIELDS}
        return cls(initial={**initial, "version": note.version})

    def draft_fields(self) -> dict[str, Any]:
        """The submitted fields (those the request carried)."""
        return {name: self.cleaned_data[name] for name in self.FIELDS if name in self.data}


class SignForm(forms.Form):
    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    no_diagnosis = forms.BooleanField(label=_("No diagnosis for this consult"), required=False)
    confirm = forms.BooleanField(
        label=_("I have checked this note. Once signed it cannot be changed, only added to."), required=True
    )


class DiagnosisForm(forms.Form):
    code = forms.CharField(label=_("ICD-10 code"), max_length=CODE_MAX_LENGTH + 2)
    is_primary = forms.BooleanField(label=_("Primary diagnosis"), required=False)


class AddendumForm(forms.Form):
    text = forms.CharField(
        label=_("Addendum"),
        max_length=ADDENDUM_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": ADDENDUM_MAX_LENGTH}),
    )


class FollowUpForm(forms.Form):
    starts_at = forms.DateTimeField()
    mode = forms.ChoiceField(choices=ConsultMode.choices)
