"""The browsable API documentation (/docs), opened in a real browser: Debian's chromium, headless.

Each service is served over HTTP in this process (werkzeug in a thread). The rendered DOM must show
Swagger UI with the service's operations, which it can only do after its JavaScript ran and fetched
/openapi.json from the service itself. "Try it out" is driven through the DevTools protocol (over a
pipe, no extra package): without a key the API answers 401, after "Authorize" with an API key the same
request carries that key and answers the caller's organisation. Every request the page makes stays on
the service (no CDN, no online validator), and the page's Content-Security-Policy blocks nothing it needs.

Without chromium these tests skip with that reason; under CI=true they fail (.ci/run installs it).
"""

from __future__ import annotations

import fcntl
import importlib
import json
import logging
import os
import re
import select
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from intake.service_layer import services as intake_services
from werkplaats_shared.auth import generate_key
from werkplaats_shared.config import Settings
from werkplaats_shared.db import utcnow
from werkzeug.serving import make_server

from ..conftest import IN_CI

pytestmark = pytest.mark.e2e

SECRET_KEY = "docs-browser-test-only-secret-key-0123456789"
# Quiet, offline-friendly headless chromium: no first-run, sync, component updates or background traffic.
CHROMIUM_FLAGS = ["--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage", "--no-first-run",
                  "--no-default-browser-check", "--disable-extensions", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update"]
# An operation of each service that Swagger UI must render from the service's document.
OPERATIONS = {"intake": ["/me", "/assignments", "/batches"], "matching": ["/runs", "/matches", "/policies"],
              "scheduling": ["/contact", "/notices", "/webhook"]}


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        reason = "chromium is not installed (apt-get install chromium; .ci/run installs it)"
        if IN_CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return found


@dataclass
class Served:
    base_url: str
    key: str
    organisation_id: str
    seen_authorization: list[str]


def _service_app(service: str, tmp_path: Path) -> tuple[Flask, Any, str, str]:
    """The service's real app on a fresh SQLite database, and one valid API key with its organisation."""
    bootstrap = importlib.import_module(f"{service}.bootstrap")
    factory = getattr(importlib.import_module(f"{service}.entrypoints.api"), f"create_{service}_app")
    settings = Settings.from_env(service, {
        "WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/{service}.sqlite3", "WERKPLAATS_DATA_DIR": str(tmp_path),
        "WERKPLAATS_SECRET_KEY": SECRET_KEY})
    infra = bootstrap.bootstrap(settings)
    if service == "intake":
        with infra.session_factory.begin() as session:
            org, key = intake_services.create_organisation(
                session, lambda env: infra.emit(session, env), name="Docs test coordinatie", role="coordinator",
                levels=[])
            organisation_id = org.id
    else:
        new = generate_key()
        organisation_id = "4b6f3d3e-7a8e-4d1b-9a51-0d2c6c1f0a11"
        with infra.engine.begin() as conn:
            conn.execute(infra.api_keys.insert().values(
                key_id=new.key_id, organisation_id=organisation_id, role="coordinator",
                secret_hash=new.secret_hash, created_at=utcnow()))
        key = new.plaintext
    return factory(infra), infra, key, organisation_id


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    started: list[tuple[Any, threading.Thread, Any]] = []

    def start(service: str) -> Served:
        app, infra, key, organisation_id = _service_app(service, tmp_path)
        seen: list[str] = []
        wsgi = app.wsgi_app

        def recording(environ: dict[str, Any], start_response: Any) -> Any:
            if environ.get("PATH_INFO") == "/me":
                seen.append(environ.get("HTTP_AUTHORIZATION", ""))
            return wsgi(environ, start_response)

        app.wsgi_app = recording  # type: ignore[method-assign]
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        started.append((server, thread, infra))
        return Served(f"http://127.0.0.1:{server.server_port}", key, organisation_id, seen)

    yield start
    for server, thread, infra in started:
        server.shutdown()
        thread.join(10)
        server.server_close()
        infra.engine.dispose()
    root.handlers[:], root.level = handlers, level


@pytest.mark.parametrize("service", sorted(OPERATIONS))
def test_docs_page_renders_the_services_operations_in_a_browser(
        service: str, chromium: str, serve: Any, tmp_path: Path) -> None:
    served = serve(service)
    done = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000",
         "--dump-dom", f"{served.base_url}/docs"],
        capture_output=True, text=True, timeout=120, check=False)
    dom = done.stdout
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'class="swagger-ui"' in dom, dom[:2000]
    rendered = set(re.findall(r'class="opblock-summary-path"[^>]*data-path="([^"]+)"', dom))
    assert set(OPERATIONS[service]) <= rendered, sorted(rendered)
    assert "Failed to load API definition" not in dom
    assert "/docs" not in rendered  # the page itself is no operation of the API


def _above_4(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class DevTools:
    """Chromium's DevTools protocol over --remote-debugging-pipe: JSON messages ending in NUL, commands on
    the browser's fd 3, answers and events on its fd 4."""

    def __init__(self, chromium: str, profile: Path) -> None:
        # Above 4, so that bash's "3<&r 4>&w" cannot overwrite one end with the other.
        to_browser_r, to_browser_w, from_browser_r, from_browser_w = (_above_4(fd) for pair in (os.pipe(), os.pipe())
                                                                      for fd in pair)
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w}', chromium, *CHROMIUM_FLAGS,
             f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            pass_fds=(to_browser_r, from_browser_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.write_fd, self.read_fd = to_browser_w, from_browser_r
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def close(self) -> None:
        os.close(self.write_fd)
        os.close(self.read_fd)
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.read_fd], [], [], remaining)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self.read_fd, 1 << 16)
            if not chunk:
                raise ConnectionError("chromium closed the DevTools pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return dict(json.loads(message))

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 60) -> dict[str, Any]:
        self.next_id += 1
        command: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            command["sessionId"] = session
        os.write(self.write_fd, json.dumps(command).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            message = self._read(deadline)
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            self.events.append(message)

    def wait_for_event(self, method: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for seen in self.events:
            if seen.get("method") == method:
                return seen
        while True:
            message = self._read(deadline)
            self.events.append(message)
            if message.get("method") == method:
                return message

    def evaluate(self, session: str, expression: str, timeout: float = 60) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, session, timeout)
        if "exceptionDetails" in result:
            raise AssertionError(f"in the page: {json.dumps(result['exceptionDetails'])[:2000]}")
        return result["result"].get("value")


# Drives Swagger UI as a user would: open GET /me, "Try it out", "Execute"; the answer's status and body.
PAGE_HELPERS = """
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
async function find(selector, root = document, ms = 20000) {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(50)) {
    const found = root.querySelector(selector);
    if (found) return found;
  }
  throw new Error("not on the page: " + selector);
}
async function gone(selector, root = document, ms = 20000) {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(50)) {
    if (!root.querySelector(selector)) return;
  }
  throw new Error("still on the page: " + selector);
}
function type(input, text) {
  Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value").set.call(input, text);
  input.dispatchEvent(new Event("input", {bubbles: true}));
}
async function operation(path) {
  const block = (await find('.opblock-summary-path[data-path="' + path + '"]')).closest(".opblock");
  if (!block.classList.contains("is-open")) block.querySelector(".opblock-summary-control").click();
  return block;
}
async function execute(path) {
  const block = await operation(path);
  const tryOut = await find(".try-out__btn", block);
  if (!tryOut.classList.contains("cancel")) tryOut.click();
  const clear = block.querySelector(".btn-clear");
  if (clear) { clear.click(); await gone(".live-responses-table", block); }
  (await find(".execute", block)).click();
  const status = await find(".live-responses-table tr.response .response-col_status", block);
  const body = await find(".live-responses-table tr.response .response-col_description pre", block);
  return {status: status.textContent.trim(), body: body.textContent};
}
async function authorize(key) {
  (await find(".auth-wrapper .authorize")).click();
  const dialog = await find(".modal-ux");
  type(await find("input", dialog), key);
  (await find(".auth-btn-wrapper .authorize", dialog)).click();
  (await find(".btn-done", dialog)).click();
  await gone(".modal-ux");
}
"""


def test_try_it_out_sends_the_api_key_the_user_entered(chromium: str, serve: Any, tmp_path: Path) -> None:
    served = serve("intake")
    browser = DevTools(chromium, tmp_path / "profile")
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Network", "Log", "Runtime"):
            browser.call(f"{domain}.enable", session=session)
        browser.call("Page.navigate", {"url": f"{served.base_url}/docs"}, session)
        browser.wait_for_event("Page.loadEventFired")

        browser.evaluate(session, PAGE_HELPERS)
        anonymous = browser.evaluate(session, "execute('/me')")
        assert anonymous["status"].startswith("401"), anonymous
        assert served.seen_authorization == [""]

        browser.evaluate(session, f"authorize({json.dumps(served.key)})")
        with_key = browser.evaluate(session, "execute('/me')")
        assert with_key["status"].startswith("200"), with_key
        assert json.loads(with_key["body"])["id"] == served.organisation_id
        assert served.seen_authorization == ["", f"Bearer {served.key}"]
    finally:
        browser.close()

    requested = {e["params"]["request"]["url"] for e in browser.events
                 if e.get("method") == "Network.requestWillBeSent"}
    assert f"{served.base_url}/openapi.json" in requested
    assert {url for url in requested if not url.startswith((served.base_url + "/", "data:"))} == set()
    blocked = [e["params"]["entry"]["text"] for e in browser.events if e.get("method") == "Log.entryAdded"
               and "Content Security Policy" in e["params"]["entry"].get("text", "")]
    assert blocked == []
