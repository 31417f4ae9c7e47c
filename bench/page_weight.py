"""Page weight: the bytes a phone's browser downloads on the first load of a
page (empty cache), as served over the wire, compressed, headers included.

Chromium reports, per request, ``encodedDataLength`` in the DevTools
protocol's ``Network.loadingFinished`` event: the bytes received for that
request, headers and compressed body. A page's weight is their sum over every
request the load made (document, stylesheets, scripts, images, icon).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Browser, BrowserContext, CDPSession, ViewportSize, sync_playwright
from playwright.sync_api import Error as PlaywrightError

CHROMIUM_EXECUTABLE = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
]
# A patient's phone: narrow screen, Chinese first (the site's default language).
PHONE_VIEWPORT: ViewportSize = {"width": 360, "height": 740}
PHONE_LOCALE = "zh-CN"
PAGE_BUDGET_BYTES = 100 * 1024
NAVIGATION_TIMEOUT_MS = 20_000
# After "load", wait this long for the network to go quiet (late icon or module fetches).
NETWORK_IDLE_TIMEOUT_MS = 5_000


@dataclass(frozen=True)
class PageSpec:
    path: str
    signed_in: bool


PATIENT_PAGES = [
    PageSpec("/accounts/login/", signed_in=False),
    PageSpec("/accounts/signup/", signed_in=False),
    PageSpec("/accounts/login/code/", signed_in=False),
    PageSpec("/", signed_in=True),
    PageSpec("/me/", signed_in=True),
    PageSpec("/me/consent/", signed_in=True),
]


@dataclass
class AssetTransfer:
    """One request of a page load, as Chromium's network stack saw it."""

    url: str
    resource_type: str
    status: int | None = None
    content_encoding: str = ""
    accept_encoding: str = ""
    wire_bytes: int = 0
    body_bytes: int = 0
    failed: str = ""

    @property
    def label(self) -> str:
        """The path for the app's own requests, a short form for inline data: URLs."""
        parts = urlsplit(self.url)
        if parts.scheme == "data":
            return "data:" + parts.path.split(";", 1)[0].split(",", 1)[0] + " (inline, not fetched)"
        if parts.hostname != "127.0.0.1":
            return self.url  # anything not served by the app under test shows in full
        return parts.path + (f"?{parts.query}" if parts.query else "")


@dataclass
class PageWeight:
    spec: PageSpec
    final_path: str = ""
    document_status: int | None = None
    assets: list[AssetTransfer] = field(default_factory=list)
    budget_bytes: int = PAGE_BUDGET_BYTES

    @property
    def total_bytes(self) -> int:
        return sum(asset.wire_bytes for asset in self.assets)

    @property
    def loaded(self) -> bool:
        """The page itself answered 200 at the address asked for, and nothing failed."""
        return (
            self.document_status == 200
            and self.final_path == self.spec.path
            and not any(asset.failed for asset in self.assets)
        )

    @property
    def within_budget(self) -> bool:
        return self.total_bytes <= self.budget_bytes

    @property
    def verdict(self) -> str:
        if not self.loaded:
            return "error"
        return "pass" if self.within_budget else "fail"


class NetworkRecorder:
    """Collects the DevTools Network events of one page load into
    AssetTransfers, in the order the requests started; a redirect hop is an
    entry of its own."""

    def __init__(self, session: CDPSession) -> None:
        self._started: list[AssetTransfer] = []
        self._in_flight: dict[str, AssetTransfer] = {}  # by DevTools request id
        self._early_accept_encoding: dict[str, str] = {}
        session.on("Network.requestWillBeSent", self._on_request)
        session.on("Network.requestWillBeSentExtraInfo", self._on_request_extra_info)
        session.on("Network.responseReceived", self._on_response)
        session.on("Network.dataReceived", self._on_data)
        session.on("Network.loadingFinished", self._on_finished)
        session.on("Network.loadingFailed", self._on_failed)
        session.send("Network.enable")
        # Belt and braces: a fresh context has an empty cache, and this keeps it out of play.
        session.send("Network.setCacheDisabled", {"cacheDisabled": True})

    def _on_request(self, event: dict[str, Any]) -> None:
        request_id = event["requestId"]
        redirect = event.get("redirectResponse")
        hop = self._in_flight.pop(request_id, None)
        if redirect is not None and hop is not None:
            # The same request id now follows the redirect; the hop's bytes come with it.
            hop.status = redirect.get("status")
            hop.content_encoding = _header(redirect.get("headers", {}), "content-encoding")
            hop.wire_bytes = int(redirect.get("encodedDataLength", 0))
        transfer = AssetTransfer(
            url=event["request"]["url"],
            resource_type=event.get("type", "Other"),
            accept_encoding=self._early_accept_encoding.pop(request_id, "")
            or _header(event["request"].get("headers", {}), "accept-encoding"),
        )
        self._started.append(transfer)
        self._in_flight[request_id] = transfer

    def _on_request_extra_info(self, event: dict[str, Any]) -> None:
        # The headers really sent (the network stack adds Accept-Encoding
        # itself); this event may come before or after requestWillBeSent.
        accept_encoding = _header(event.get("headers", {}), "accept-encoding")
        transfer = self._in_flight.get(event["requestId"])
        if transfer is None:
            self._early_accept_encoding[event["requestId"]] = accept_encoding
        elif accept_encoding:
            transfer.accept_encoding = accept_encoding

    def _on_response(self, event: dict[str, Any]) -> None:
        transfer = self._in_flight.get(event["requestId"])
        if transfer is None:
            return
        response = event["response"]
        transfer.status = response.get("status")
        transfer.content_encoding = _header(response.get("headers", {}), "content-encoding")

    def _on_data(self, event: dict[str, Any]) -> None:
        transfer = self._in_flight.get(event["requestId"])
        if transfer is not None:
            transfer.body_bytes += int(event.get("dataLength", 0))

    def _on_finished(self, event: dict[str, Any]) -> None:
        transfer = self._in_flight.pop(event["requestId"], None)
        if transfer is not None:
            transfer.wire_bytes = int(event.get("encodedDataLength", 0))

    def _on_failed(self, event: dict[str, Any]) -> None:
        transfer = self._in_flight.pop(event["requestId"], None)
        if transfer is not None:
            transfer.failed = event.get("errorText") or "failed"

    def assets(self) -> list[AssetTransfer]:
        """Every request of the load; one that never finished is marked so."""
        for transfer in self._in_flight.values():
            transfer.failed = transfer.failed or "still loading"
        return list(self._started)


def _header(headers: dict[str, Any], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return str(value)
    return ""


def page_weight_measure(
    *, browser: Browser, base_url: str, spec: PageSpec, session_cookies: dict[str, str]
) -> PageWeight:
    context: BrowserContext = browser.new_context(viewport=PHONE_VIEWPORT, locale=PHONE_LOCALE)
    try:
        if spec.signed_in:
            context.add_cookies(
                [{"name": name, "value": value, "url": base_url} for name, value in session_cookies.items()]
            )
        page = context.new_page()
        recorder = NetworkRecorder(context.new_cdp_session(page))
        response = page.goto(base_url + spec.path, wait_until="load", timeout=NAVIGATION_TIMEOUT_MS)
        # A request still open after the timeout is reported as "still loading".
        with contextlib.suppress(PlaywrightError):
            page.wait_for_load_state("networkidle", timeout=NETWORK_IDLE_TIMEOUT_MS)
        return PageWeight(
            spec=spec,
            final_path=urlsplit(page.url).path,
            document_status=response.status if response is not None else None,
            assets=recorder.assets(),
        )
    finally:
        context.close()


def page_weights_measure(
    *, base_url: str, pages: list[PageSpec], session_cookies: dict[str, str]
) -> tuple[list[PageWeight], str]:
    """Each page in its own fresh browser context; returns the weights and the browser's version."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM_EXECUTABLE, args=CHROMIUM_ARGS, headless=True)
        try:
            weights = [
                page_weight_measure(browser=browser, base_url=base_url, spec=spec, session_cookies=session_cookies)
                for spec in pages
            ]
            return weights, f"Chromium {browser.version}"
        finally:
            browser.close()
