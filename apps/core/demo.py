"""The demo network that `manage.py seed_demo` creates (documented in the README)."""

# ruff: noqa: RUF001  # the Chinese demo texts use full-width punctuation

from __future__ import annotations

DEMO_PASSWORD = "telemed-demo-2026"  # noqa: S105  # the documented demo password
# Staff accounts come with TOTP already enrolled so the demo needs no phone
# app: `manage.py demo_totp EMAIL` prints the current code.
DEMO_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # noqa: S105  # demo only, documented

SPECIALTIES = [
    ("general-practice", "General practice", "全科"),
    ("cardiology", "Cardiology", "心血管内科"),
    ("endocrinology", "Endocrinology", "内分泌科"),
    ("pediatrics", "Pediatrics", "儿科"),
]

CLINICS = [
    ("county", "青山县人民医院 Qingshan County Hospital", "No. 1 Renmin Road, Qingshan County", "+862088880001"),
    ("dongxi", "东溪乡卫生院 Dongxi Township Health Centre", "Dongxi Township, Qingshan County", "+862088880002"),
    ("nanling", "南岭乡卫生院 Nanling Township Health Centre", "Nanling Township, Qingshan County", "+862088880003"),
]

# email, full name, specialty codes, clinic keys, languages, licence
DOCTORS = [
    ("doctor.wang@example.org", "王建国", ["cardiology"], ["county"], ["zh-hans", "en"], "110440000001"),
    (
        "doctor.li@example.org",
        "李秀英",
        ["endocrinology", "general-practice"],
        ["county", "dongxi"],
        ["zh-hans"],
        "110440000002",
    ),
    ("doctor.chen@example.org", "陈志明", ["general-practice", "pediatrics"], ["nanling"], ["zh-hans"], "110440000003"),
]

CLINIC_ADMINS = [("admin.zhao@example.org", "赵丽", ["county", "dongxi", "nanling"])]

SITE_ADMIN = ("siteadmin@example.org", "Site Admin")

# email or None, phone or None, full name, language, village, consented
PATIENTS = [
    ("zhang.wei@example.org", "+8613800138001", "张伟", "zh-hans", "东溪村", True),
    ("li.na@example.org", None, "李娜", "zh-hans", "南岭村", True),
    ("mary.brown@example.org", None, "Mary Brown", "en", "Qingshan town", True),
    (None, "+8613800138004", "刘芳", "zh-hans", "石桥村", True),
    (None, "+8613800138005", "陈强", "zh-hans", "石桥村", False),
]

# Weekly hours of every demo doctor at each of their clinics (clinic time):
# weekday mornings and afternoons, 20-minute slots with 5 minutes between.
WEEKLY_HOURS = [("08:30", "11:30"), ("14:00", "17:00")]
SLOT_MINUTES = 20
BUFFER_MINUTES = 5

# The demo's "try a consult now" appointment: a video consult for 张伟 with
# 王建国 that starts a few minutes after `seed_demo` (or `--refresh-soon`).
SOON_PATIENT = "zhang.wei@example.org"
SOON_DOCTOR = "doctor.wang@example.org"
SOON_REASON = "Demo: a video consult you can join now"
SOON_STARTS_IN_MINUTES = 5

# Months of home readings (seed_demo writes them through the vitals services,
# as entered by the patient; the same seed gives the same values):
# 张伟's blood pressure rises over the period (morning and evening) with a
# weekly weight; 李娜's glucose (fasting and after dinner) has a few low
# episodes, one below 3.0 mmol/L (level 2: an alert for her doctor, 李秀英,
# who saw her last month); Mary Brown has a few normal readings.
READINGS_DAYS = 120
READINGS_SEED = 2026
BP_PATIENT = "zhang.wei@example.org"
BP_START_MMHG = (128, 82)  # systolic, diastolic at the start of the period
BP_END_MMHG = (152, 96)  # ... and at its end
GLUCOSE_PATIENT = "li.na@example.org"
GLUCOSE_DOCTOR = "doctor.li@example.org"
# Days before today of 李娜's low episodes (mmol/L, before breakfast).
GLUCOSE_LOWS = {97: "3.6", 71: "3.7", 44: "2.8", 23: "3.5", 9: "3.8"}
NORMAL_PATIENT = "mary.brown@example.org"
# The demo ECG: MIT-BIH record 100 (the app's sample), uploaded for 张伟 as
# a WFDB zip and analysed by seed_demo itself.
ECG_PATIENT = "zhang.wei@example.org"
ECG_RECORD = "100"
ECG_FILE_NAME = "mitdb-100.zip"

# The demo doctor's day: what 王建国 (DEMO_DOCTOR) finds on his dashboard.
# - Triage: 张伟's blood pressure climbs to grade 3 (urgent) yesterday and a
#   crisis (critical) a couple of hours before the demo data is loaded; 刘芳,
#   whom he saw for palpitations two weeks ago, records a fast heart rate
#   (urgent); 李娜's level-2 low (critical) is his too since 李秀英 referred
#   her to him (below). Values: (patient, kind, values, hours before loading).
# - Patients: 张伟 and 刘芳 (appointments), 李娜 (the referral).
# - 张伟's consult last week has a signed note (hypertension I10 and
#   overweight E66.3) with a plain summary of the plan for him; 李秀英, who
#   also works at the Dongxi health centre near his village, is on his care
#   team.
DEMO_DOCTOR = "doctor.wang@example.org"
PALPITATIONS_PATIENT = "+8613800138004"  # 刘芳, phone only
PALPITATIONS_DAYS_AGO = 14
ALERT_READINGS = [
    (BP_PATIENT, "blood_pressure", {"systolic": 176, "diastolic": 110, "pulse": 84}, 26, "头胀"),
    (BP_PATIENT, "blood_pressure", {"systolic": 184, "diastolic": 112, "pulse": 88}, 2, "头痛、头晕"),
    (PALPITATIONS_PATIENT, "heart_rate", {"heart_rate": 128}, 5, "心慌"),
]
NOTE_DIAGNOSES = ["I10", "E66.3"]
NOTE_FIELDS = {
    "subjective": "血压控制不佳，早晨偶有头胀，无胸痛、气短。家中自测血压逐月升高。",
    "assessment": "原发性高血压（2级），超重。",
    "plan": "加用氨氯地平 5 mg 每日一次；每日早晚自测血压并录入；减盐、每周至少 150 分钟快走；两周后复诊。",
    "medications": "氨氯地平 5 mg 口服 每日一次",
    "advice": "每天盐少于 5 克；血压超过 180/110 或头痛、胸痛时立即就医。",
    "patient_summary": (
        "您的血压偏高。请每天早上吃一片氨氯地平（5 毫克），每天早晚各量一次血压并记录在应用里。"
        "少吃盐，多走路。两周后再和王医生视频复诊。如果血压超过 180/110，或头痛、胸痛，请马上就医或拨打 120。"
    ),
    "follow_up_after_days": 14,
}
REFERRAL_FROM = GLUCOSE_DOCTOR  # 李秀英 refers 李娜 to 王建国 (cardiology)
REFERRAL_PATIENT = GLUCOSE_PATIENT
REFERRAL_REASON = "低血糖发作时伴心慌、出汗，请心内科评估心律（必要时做心电图）并复核降压用药。"
CARE_TEAM_PATIENT = BP_PATIENT
CARE_TEAM_DOCTOR = GLUCOSE_DOCTOR  # 李秀英, at the county hospital and in Dongxi
