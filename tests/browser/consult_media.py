"""Chromium for the consult room's media tests: one Playwright driver that
can launch browsers with one or two fake cameras, and a page script that
makes the link look weak (or strong) to the room page's getStats."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.browser.conftest import CHROMIUM_ARGS
from tests.services import chromium_path

FAKE_DEVICES = "--use-fake-device-for-media-stream"

# Added to a page before its scripts run: while window.telemedLinkKbps is a
# number, every candidate pair's availableOutgoingBitrate reads as that many
# kbps (the rest of the report, and the media, are real).
LINK_ESTIMATE_SCRIPT = """
(() => {
  const getStats = RTCPeerConnection.prototype.getStats;
  RTCPeerConnection.prototype.getStats = async function (...args) {
    const report = await getStats.apply(this, args);
    const kbps = window.telemedLinkKbps;
    if (typeof kbps !== "number") return report;
    const changed = new Map();
    report.forEach((stat, id) => {
      const pair = stat.type === "candidate-pair" && typeof stat.availableOutgoingBitrate === "number";
      changed.set(id, pair ? { ...stat, availableOutgoingBitrate: kbps * 1000 } : stat);
    });
    return changed;
  };
})();
"""


@contextmanager
def playwright_driver() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


def launch_call_browser(playwright: Any, *, cameras: int = 1) -> Any:
    """Chromium for calls (as consult_helpers.call_browser: host candidates
    without mDNS, sound without a tap) with ``cameras`` fake cameras."""
    fake = FAKE_DEVICES if cameras == 1 else f"{FAKE_DEVICES}=device-count={cameras}"
    args = [
        *(fake if arg == FAKE_DEVICES else arg for arg in CHROMIUM_ARGS),
        "--disable-features=WebRtcHideLocalIpsWithMdns",
        "--autoplay-policy=no-user-gesture-required",
    ]
    return playwright.chromium.launch(executable_path=chromium_path(), args=args, headless=True)
