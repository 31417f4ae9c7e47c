"""``{% id_url %}``: the same links as ``{% url %}``, in either language."""

from __future__ import annotations

import pytest
from django.template import engines
from django.urls import reverse
from django.utils import translation

pytestmark = pytest.mark.sqlite


@pytest.mark.parametrize("name", ["care:chart", "care:alert_acknowledge", "vitals:reading", "scheduling:detail"])
def test_it_gives_the_url_of_the_name_and_id(name: str) -> None:
    template = engines["django"].from_string("{% load care_urls %}{% id_url name pk %}|{% id_url name 7 as u %}{{ u }}")
    for language in ("en", "zh-hans"):
        with translation.override(language):
            assert (
                template.render({"name": name, "pk": 123}) == f"{reverse(name, args=[123])}|{reverse(name, args=[7])}"
            )
