"""Every message template renders in both languages, and SMS stay short."""

from __future__ import annotations

from typing import Any

import pytest

from apps.notifications.models import Notification
from apps.notifications.rendering import notification_render
from apps.notifications.sms import sms_segments
from tests.core.test_settings import ROOT

MESSAGES = ROOT / "templates" / "notifications" / "messages"

# A realistic, long-ish context for each template.
CONTEXTS: dict[str, dict[str, Any]] = {
    "account/sign_in_code": {"code": "482913"},
    "account/unknown_number": {},
    "account/number_has_account": {},
    "account/welcome": {"link": "/me/consent/"},
    "account/staff_invitation": {
        "clinic": "青山县人民医院 Qingshan County Hospital",
        "role": "医生",
        "link": "https://telemed.qingshan-health.cn/i/AbCdEfGhIjKlMnOpQrStUv/",
        "days": 7,
    },
    "account/invitation_accepted": {
        "name": "王建国",
        "clinic": "东溪乡卫生院",
        "role": "医生",
        "link": "/clinics/1/staff/",
    },
}
_APPOINTMENT = {
    "doctor": "欧阳建国",
    "patient": "司马秀英",
    "clinic": "青山县人民医院 Qingshan County Hospital",
    "starts_at": "2026-12-02T01:00:00+00:00",
    "ends_at": "2026-12-02T01:30:00+00:00",
    "mode": "video",
    "cancel_reason": "医生临时出诊",
    "link": "/",
}
for _name in ("booked", "rescheduled", "cancelled", "reminder", "booked_doctor", "cancelled_doctor"):
    CONTEXTS[f"appointment/{_name}"] = _APPOINTMENT
CONTEXTS["consult/ready"] = {
    "doctor": "欧阳建国",
    "starts_at": "2026-12-02T01:00:00+00:00",
    "link": "/consults/123456/",
}

CONTEXTS["care/doctor_message"] = {
    "doctor": "欧阳建国",
    "text": "请今晚再量一次血压，" * 10,  # the longest message a doctor may send (100 characters)
    "link": "/appointments/",
}
CONTEXTS["readings/alert"] = {
    "patient": "司马秀英",
    "kind": "blood_pressure",
    "category": "bp_crisis",
    "severity": "critical",
    "measured_at": "2026-12-02T01:00:00+00:00",
    "link": "/vitals/patients/123456/",
}
CONTEXTS["care/break_glass"] = {
    "doctor": "欧阳建国 Dr Ouyang Jianguo",
    "patient": "司马晓梅 Sima Xiaomei",
    "opened_at": "2026-12-02T01:00:00+00:00",
    "link": "/care/clinics/123456/break-glass/",
}
CONTEXTS["care/plan_ready"] = {
    "doctor": "欧阳建国 Dr Ouyang Jianguo",
    "starts_at": "2026-12-02T01:00:00+00:00",
    "link": "/a/12345678/",
}
CONTEXTS["care/referral_invite"] = {
    "from_doctor": "欧阳建国 Dr Ouyang Jianguo",
    "to_doctor": "",
    "specialty_en": "Cardiology",
    "specialty_zh_hans": "心血管内科",
    "link": "/care/referrals/12345678/",
}
CONTEXTS["care/referral_notice"] = {
    "event": "created",
    "patient": "司马晓梅 Sima Xiaomei",
    "from_doctor": "欧阳建国 Dr Ouyang Jianguo",
    "to_doctor": "诸葛明 Dr Zhuge Ming",
    "specialty_en": "",
    "specialty_zh_hans": "",
    "urgency": "urgent",
    "link": "/care/referrals/12345678/",
}
CONTEXTS["readings/advice"] = {
    "kind": "blood_pressure",
    "category": "bp_crisis",
    "severity": "critical",
    "measured_at": "2026-12-02T01:00:00+00:00",
    "link": "/vitals/readings/12345678/",
    "number": "120",
    "doctors_told": True,
}
CONTEXTS["readings/ecg_sent"] = {
    "kind": "ecg",
    "category": "ecg_irregular_rr",
    "severity": "urgent",
    "measured_at": "2026-12-02T01:00:00+00:00",
    "link": "/vitals/ecg/123456/",
    "number": "120",
    "doctors_told": True,
}


def _templates() -> list[str]:
    return sorted(str(path.parent.relative_to(MESSAGES)) for path in MESSAGES.glob("*/*/subject.txt"))


def test_every_template_has_a_sample_context() -> None:
    assert set(_templates()) == set(CONTEXTS)


@pytest.mark.parametrize("language", ["zh-hans", "en"])
@pytest.mark.parametrize("template", sorted(CONTEXTS))
def test_sms_fit_in_two_segments(template: str, language: str, settings: Any) -> None:
    settings.SITE_URL = "https://telemed.qingshan-health.cn"
    if not (MESSAGES / template / "sms.txt").exists():
        pytest.skip("no SMS form")
    notification = Notification(channel="sms", template=template, context=CONTEXTS[template], language=language)
    text = notification_render(notification).text
    assert text
    assert sms_segments(text) <= 2, (len(text), text)
    if language == "zh-hans":
        assert any("\u4e00" <= ch <= "\u9fff" for ch in text.replace(CONTEXTS[template].get("clinic", ""), ""))


@pytest.mark.sqlite
@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),
        ("你" * 70, 1),
        ("你" * 71, 2),
        ("你" * 134, 2),
    ],
)
def test_segment_counting(text: str, segments: int) -> None:
    assert sms_segments(text) == segments
