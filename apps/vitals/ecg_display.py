"""How an ECG analysis reads: plain words and numbers, in the viewer's language."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils.formats import number_format
from django.utils.translation import gettext as _

from apps.vitals.display import category_label, severity_label
from apps.vitals.models import EcgRecording


@dataclass(frozen=True)
class RhythmScreen:
    state: str  # irregular, regular, not_assessed
    text: str
    method: str
    caveat: str = ""


@dataclass(frozen=True)
class EcgSummaryDisplay:
    rows: list[tuple[str, str]] = field(default_factory=list)
    rhythm: RhythmScreen | None = None
    flag: str = ""
    severity: str = ""
    severity_label: str = ""


def _n(value: float | int, decimals: int = 0) -> str:
    return number_format(round(float(value), decimals), decimal_pos=decimals, use_l10n=True, force_grouping=True)


def duration_display(seconds: float | None) -> str:
    if seconds is None:
        return ""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return _("%(h)s h %(m)s min") % {"h": hours, "m": minutes}
    if minutes:
        return _("%(m)s min %(s)s s") % {"m": minutes, "s": secs}
    return _("%(s)s s") % {"s": secs}


QUALITY_WORDS = {
    "good": lambda: _("Good"),
    "acceptable": lambda: _("Acceptable"),
    "poor": lambda: _("Poor: too noisy to judge reliably"),
}


def _rhythm(af: dict[str, Any] | None) -> RhythmScreen:
    method = (
        _(
            "Method: RR-interval irregularity (Dash et al., 2009: normalised RMSSD, Shannon entropy and "
            "turning-point ratio over 128-beat segments; published per segment: sensitivity 94.4 %%, "
            "specificity 95.1 %% on the MIT-BIH Atrial Fibrillation Database)."
        )
        % {}
    )
    if not af or af.get("irregular") is None:
        return RhythmScreen(
            "not_assessed", _("Not assessed: too few beats, or the signal is too noisy."), method=method
        )
    caveat = ""
    if af.get("assessment") == "short":
        caveat = _("Fewer than 128 beats: the whole recording was judged as one short segment, which is less reliable.")
    if af["irregular"]:
        text = _("Irregular RR intervals: possible atrial fibrillation. Please review the tracing.")
        if af.get("segments", 0) > 1:
            text += " " + _("%(flagged)s of %(segments)s segments irregular.") % {
                "flagged": af.get("segments_flagged", 0),
                "segments": af["segments"],
            }
        return RhythmScreen("irregular", text, method=method, caveat=caveat)
    return RhythmScreen(
        "regular", _("No sign of atrial fibrillation on this screen (RR intervals regular enough)."), method, caveat
    )


def ecg_summary_display(recording: EcgRecording) -> EcgSummaryDisplay:
    summary = recording.summary or {}
    rows: list[tuple[str, str]] = []
    heart_rate = summary.get("heart_rate")
    if heart_rate:
        rows.append(
            (
                _("Heart rate"),
                _("%(mean)s/min on average (lowest %(low)s, highest %(high)s)")
                % {
                    "mean": _n(heart_rate["mean_bpm"]),
                    "low": _n(heart_rate["min_bpm"]),
                    "high": _n(heart_rate["max_bpm"]),
                },
            )
        )
    rows.append(
        (
            _("Beats"),
            _("%(count)s beats in %(duration)s")
            % {"count": _n(summary.get("beat_count", 0)), "duration": duration_display(recording.duration_s)},
        )
    )
    rr = summary.get("rr")
    if rr:
        rows.append(
            (
                _("RR intervals"),
                _("%(mean)s ms on average (shortest %(low)s ms, longest %(high)s ms)")
                % {"mean": _n(rr["mean_ms"]), "low": _n(rr["min_ms"]), "high": _n(rr["max_ms"])},
            )
        )
    hrv = summary.get("hrv")
    if hrv:
        rows.append(
            (
                _("Heart-rate variability"),
                _("SDNN %(sdnn)s ms · RMSSD %(rmssd)s ms · pNN50 %(pnn50)s %%")
                % {"sdnn": _n(hrv["sdnn_ms"]), "rmssd": _n(hrv["rmssd_ms"]), "pnn50": _n(hrv["pnn50_pct"], 1)},
            )
        )
    quality = summary.get("quality")
    if quality:
        words = QUALITY_WORDS.get(quality.get("level", ""), lambda: quality.get("level", ""))()
        rows.append(
            (
                _("Signal quality"),
                _("%(words)s (%(usable)s %% of 10-second windows usable)")
                % {"words": words, "usable": _n(100 * float(quality.get("index", 0.0)))},
            )
        )
    rows.append(
        (
            _("Recording"),
            _("lead %(lead)s, %(rate)s Hz, %(format)s")
            % {
                "lead": recording.lead or "?",
                "rate": _n(recording.sample_rate_hz or 0),
                "format": recording.get_file_format_display(),
            },
        )
    )
    return EcgSummaryDisplay(
        rows=rows,
        rhythm=_rhythm(summary.get("af")),
        flag=category_label(recording.category) if recording.category else "",
        severity=recording.severity,
        severity_label=severity_label(recording.severity) if recording.severity else "",
    )
