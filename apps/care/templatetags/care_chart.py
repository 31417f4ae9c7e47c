"""Labels and icons of the chart's timeline items."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext as _

register = template.Library()

# Symbols every phone's fonts have (no emoji: older Android browsers show boxes).
_ICONS = {
    "reading": "▲",
    "ecg": "♥",
    "appointment": "●",
    "note": "✎",
    "diagnosis": "✚",
    "referral": "➜",
}


@register.filter
def timeline_icon(kind: str) -> str:
    return _ICONS.get(kind, "•")


@register.filter
def timeline_label(kind: str) -> str:
    labels = {
        "reading": _("Reading"),
        "ecg": _("ECG"),
        "appointment": _("Appointment"),
        "note": _("Consult note"),
        "diagnosis": _("Diagnosis"),
        "referral": _("Referral"),
    }
    return labels.get(kind, kind)
