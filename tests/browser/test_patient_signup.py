from __future__ import annotations

import re
from typing import Any

import pytest

from apps.accounts.models import User
from tests.conftest import sms_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_patient_signs_up_by_phone_and_reaches_home_in_chinese(live_server: Any, phone_page: Any) -> None:
    page = phone_page
    page.goto(live_server.url + "/")
    assert "/accounts/login/" in page.url
    page.get_by_role("link", name="创建账户").first.click()
    page.get_by_label("姓名").fill("王芳")
    page.get_by_label("手机号码").fill("138 0013 8777")
    page.get_by_role("button", name="发送验证码").click()

    page.wait_for_url(re.compile(r".*/accounts/phone/verify/.*"))
    page.locator("input[name=code]").fill(sms_code("+8613800138777"))
    page.locator("main form button[type=submit]").first.click()

    page.wait_for_url(live_server.url + "/")
    assert page.locator("h1").inner_text() == "您好，王芳"
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    assert page.get_by_role("link", name="阅读并同意").is_visible()
    # Usable at 360 px: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert User.objects.get(phone="+8613800138777").phone_verified
