"""Alice, on a 360 px phone, uploads MIT-BIH record 100 (its .hea and .dat
zipped) over a slow uplink, watches the progress bar, waits on the
recording's page while the analysis runs (the page polls its status), then
reads the analysis and the tracing: paper grid and trace drawn, R peaks
marked, the calipers between two beats giving a heart rate."""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Any

import pytest
from playwright.sync_api import expect

from apps.accounts.models import User
from apps.vitals import tasks
from apps.vitals.models import EcgRecording, EcgStatus
from apps.vitals.services_ecg import ecg_recording_analyse
from tests.browser.consult_helpers import signed_in_page
from tests.vitals.ecg_support import (
    private_storage,  # noqa: F401  # fixture
    record_100_zip,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("private_storage"),
]

PHONE = {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True, "locale": "zh-CN"}
# Pixels of the canvas that are neither paper nor grid: the trace, the
# calibration pulse and the R markers.
INK_PIXELS = """() => {
  const canvas = document.querySelector('[data-ecg-canvas]');
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let ink = 0;
  for (let i = 0; i < data.length; i += 4) if (data[i] < 90 && data[i + 1] < 90) ink += 1;
  return ink;
}"""


def _slow_uplink(page: Any) -> None:
    """About 2G/3G upstream (300 KB/s), so the upload takes a few seconds."""
    session = page.context.new_cdp_session(page)
    session.send("Network.enable")
    session.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 40, "downloadThroughput": -1, "uploadThroughput": 300 * 1024},
    )


def test_alice_uploads_an_ecg_on_her_phone_and_reads_it(
    live_server: Any, browser: Any, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[int] = []
    monkeypatch.setattr(tasks.ecg_analyse_task, "delay", queued.append)  # the worker is this test
    page = signed_in_page(browser, live_server.url, alice, **PHONE)
    _slow_uplink(page)

    page.goto(live_server.url + "/vitals/ecg/upload/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.locator("input[type=file]").set_input_files(
        {"name": "100.zip", "mimeType": "application/zip", "buffer": record_100_zip()}
    )
    page.locator("[data-upload-send]").click()
    # the bar shows and moves while the file goes up
    page.wait_for_selector("[data-upload-progress]:not([hidden])")
    page.wait_for_function(
        "() => { const v = document.querySelector('[data-upload-bar]').value; return v > 0 && v < 100; }"
    )
    page.wait_for_url(re.compile(r".*/vitals/ecg/\d+/$"), timeout=60_000)

    recording = EcgRecording.objects.get()
    assert queued == [recording.pk]
    assert page.locator("[data-ecg-status]").get_attribute("data-finished") == "false"
    assert page.locator("[data-ecg-viewer]").count() == 0
    assert ecg_recording_analyse(recording_id=recording.pk) == EcgStatus.DONE

    # the page notices by itself and shows the analysis
    page.wait_for_selector("[data-ecg-viewer]", timeout=30_000)
    assert page.locator("[data-ecg-status]").get_attribute("data-finished") == "true"
    assert page.locator("[data-ecg-rhythm]").get_attribute("data-ecg-rhythm") == "regular"
    assert "76/min" in page.locator(".ecg-numbers").inner_text()
    page.wait_for_function("() => Number(document.querySelector('[data-ecg-viewer]').dataset.rMarkers) >= 3")
    viewer = page.locator("[data-ecg-viewer]")
    assert int(viewer.get_attribute("data-drawn-samples") or 0) > 500
    assert page.evaluate(INK_PIXELS) > 500
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    # calipers on two neighbouring R peaks read a heart rate
    page.locator("[data-ecg-calipers]").click()
    xs = page.evaluate("window.telemedEcg.markerXs()")
    box = page.locator("[data-ecg-canvas]").bounding_box()
    first, second = next((a, b) for a, b in pairwise(xs) if a > 20)
    page.locator("[data-ecg-canvas]").click(position={"x": first + 3, "y": box["height"] / 2})
    page.locator("[data-ecg-canvas]").click(position={"x": second - 3, "y": box["height"] / 2})
    readout = page.locator("[data-ecg-readout]").inner_text()
    match = re.search(r"(\d+)/min", readout)
    assert match, readout
    seconds_between = (second - first) / (25 * 96 / 25.4)  # 25 mm/s on the screen at zoom 1
    assert int(match.group(1)) == round(60 / seconds_between)
    assert 55 <= int(match.group(1)) <= 100
    assert "ms" in readout and "mV" in readout

    # zoom and pan move the paper and load what comes into view
    position = page.locator("[data-ecg-position]").inner_text()
    page.locator("[data-ecg-zoom='1']").click()
    expect(page.locator("[data-ecg-zoom-label]")).to_have_text("×2")
    page.locator("[data-ecg-pan='1']").click()
    page.wait_for_function(
        "(before) => document.querySelector('[data-ecg-position]').textContent !== before", arg=position
    )
    page.wait_for_function("() => Number(document.querySelector('[data-ecg-viewer]').dataset.drawnSamples) > 100")
    assert page.errors == []
    page.context.close()
