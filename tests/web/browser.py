"""What the browser tests share: Debian's Chromium, the app served by uvicorn in a thread (the
supervisor's `ApiServer`, on a free port), a logged-in page and the screenshots.

Every browser test seeds the demo store, whose users all have the password "demo-password".
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from api.app import create_app
from api.server import ApiServer
from ivr.config import Settings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "demo-password"


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """The app on 127.0.0.1 (a free port) while the block runs; yields its base URL."""
    server = ApiServer(create_app(settings), host="127.0.0.1", port=0)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


# Every page notes what its Content-Security-Policy blocked (api/headers.py); `shoot` asserts
# there was nothing, so a page that needs an inline script or style fails its browser test.
CSP_WATCH = """
document.addEventListener("securitypolicyviolation", (e) => {
  (window.__csp = window.__csp || []).push(e.violatedDirective + " " + e.blockedURI);
});
"""


def open_page(browser: Any, base_url: str, username: str | None) -> Any:
    """A page of its own (a new context: its own cookies), logged in as `username`."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=base_url)
    context.add_init_script(CSP_WATCH)
    page = context.new_page()
    page.set_default_timeout(10_000)
    if username:
        page.goto("/login")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(base_url + "/")
    return page


def shoot(page: Any, name: str) -> None:
    """Screenshots at 1280 px and 375 px; the page must not scroll sideways on a phone, and
    its Content-Security-Policy must have blocked nothing."""
    assert page.evaluate("window.__csp || []") == [], f"{name}: blocked by the CSP"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=str(SHOTS / f"{name}-1280.png"), full_page=True)
    page.set_viewport_size({"width": 375, "height": 812})
    page.screenshot(path=str(SHOTS / f"{name}-375.png"), full_page=True)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"{name} scrolls sideways at 375 px by {overflow} px"
    page.set_viewport_size({"width": 1280, "height": 900})
