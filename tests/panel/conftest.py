"""Browser fixtures: Debian's Chromium driven by Playwright, a panel server,
screenshots, and a loopback HTTP server that counts requests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from onestack.modules import REGISTRY
from tests.support import ROOT, Server, run_server

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "panel"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Names under .test resolve to loopback only, so a vhost's page can be
    # loaded by its domain name.
    "--host-resolver-rules=MAP *.test 127.0.0.1",
]
PHONE = {"width": 390, "height": 844}

# Saving config restarts changed modules, which takes seconds on a busy
# machine: wait longer than Playwright's 5 s default for the page to update.
expect.set_options(timeout=20_000)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


class PageErrors:
    """JavaScript exceptions, console errors and unauthenticated API calls."""

    def __init__(self, page: Any) -> None:
        self.exceptions: list[str] = []
        self.console: list[str] = []
        self.anonymous_api_calls: list[str] = []
        page.on("pageerror", lambda error: self.exceptions.append(str(error)))
        page.on("console", self._check_console)
        page.on("request", self._check_request)

    def _check_console(self, message: Any) -> None:
        if message.type != "error":
            return
        # A message frame reporting what its policy blocked is the defence
        # working, not the panel breaking its own policy. So is DOMPurify,
        # which parses a message (with its style attributes) in an inert
        # document under the panel's policy.
        url = message.location.get("url", "")
        if url == "about:srcdoc" or url.endswith("/vendor/purify.es.mjs"):
            return
        self.console.append(f"{message.location.get('url')}: {message.text}")

    def _check_request(self, request: Any) -> None:
        path = request.url.split("://", 1)[-1].partition("/")[2]
        if path.startswith("api/") and "authorization" not in request.headers:
            self.anonymous_api_calls.append(request.url)

    def policy_violations(self) -> list[str]:
        return [text for text in self.console if "Content Security Policy" in text]


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.errors = PageErrors(opened)
    yield opened
    context.close()
    assert opened.errors.exceptions == [], "JavaScript exceptions in the panel"
    assert opened.errors.anonymous_api_calls == [], "API calls without credentials"
    violations = sorted(set(opened.errors.policy_violations()))
    assert violations == [], "the panel broke its own CSP"


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/panel/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def login(page: Any, server: Server, password: str = "admin123") -> None:
    page.goto(server.admin_url + "/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Dashboard").wait_for()


def module_code_available(name: str) -> bool:
    return REGISTRY[name].is_available()


def route_available(server: Server, path: str) -> bool:
    """Probe a list route: 404 means this build has no such API group yet."""
    return server.api("GET", path).status_code != 404


def require_route(server: Server, path: str, group: str) -> None:
    if not route_available(server, path):
        pytest.skip(f"the {group} API is not on this branch yet: GET {path} is 404")


def require_module(server: Server, name: str) -> None:
    if not module_code_available(name):
        pytest.skip(f"the {name} module's code is not on this branch yet")
    status = server.wait_module(name, running=True, timeout=20)
    if not status.get("running"):
        pytest.fail(f"the {name} module did not start: {status}")


@pytest.fixture(scope="session")
def panel_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with http, dns and email enabled where their code exists.

    One per test process, because starting one takes seconds: tests share
    it, so each uses its own names (domains, zones, mailboxes).
    """
    modules = {
        name: {"enabled": True}
        for name in ("http", "dns", "email")
        if module_code_available(name)
    }
    # The wrong-password tests must not lock the other tests out.
    limits = {"failedLoginsBeforeDelay": 100, "failedLoginsBeforeBlock": 1000}
    overrides = {
        "server": {"adminPanel": {"rateLimit": limits}},
        "modules": modules,
    }
    with run_server(tmp_path_factory.mktemp("panel"), overrides) as server:
        yield server


class CountingServer:
    """A loopback HTTP server that records every request path it receives."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/gif")
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> CountingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def counting_server() -> Iterator[CountingServer]:
    with CountingServer() as server:
        yield server
