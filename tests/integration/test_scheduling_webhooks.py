"""Webhooks: registration refuses targets that are not public https addresses; notices are POSTed to a
receiver on loopback (http.server in a thread) that verifies the HMAC-SHA256 signature; a failing
receiver gets bounded retries with backoff, and the delivery log shows every attempt."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import shutil
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from scheduling import bootstrap as scheduling_bootstrap
from scheduling.adapters import orm
from scheduling.adapters.links import ResponseLinks
from scheduling.adapters.webhook_client import WebhookClient
from scheduling.domain.webhooks import MAX_ATTEMPTS
from scheduling.entrypoints.api import create_scheduling_app
from scheduling.service_layer import services
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import make_envelope
from werkplaats_shared.db import utcnow

from .scheduling_names import announced_then, code_of, title_of
from .test_matching_scheduling_api import SECRET_KEY, Service, assert_error

PUBLIC_IP_URL = "https://93.184.215.14/hooks/werkplaats"  # a literal public address: registration needs no DNS
CONTACT = {"email": "planning@bakkerij-jansen.nl", "language": "nl"}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP receiver on loopback; answers with ``statuses`` in turn (the last one repeats)."""

    url: str
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=lambda: [200])
    delay: float = 0.0
    location: str | None = None

    def verified(self, secret: str, tolerance: int = 300) -> list[dict[str, Any]]:
        """What a firm's receiver does: check timestamp and signature before trusting the body."""
        out = []
        for r in self.requests:
            timestamp = r.headers["X-Werkplaats-Timestamp"]
            assert abs(time.time() - int(timestamp)) < tolerance
            expected = hmac.new(secret.encode(), timestamp.encode() + b"." + r.body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(r.headers["X-Werkplaats-Signature"], f"sha256={expected}")
            out.append(json.loads(r.body))
        return out


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from _serve(None)


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[tuple[Receiver, ssl.SSLContext]]:
    """An https receiver on loopback with a self-signed certificate for localhost; returns it and a
    client context that trusts that certificate only."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(cert))
    for state in _serve(server_context):
        yield state, client_context


def _serve(tls: ssl.SSLContext | None) -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests.append(Received(self.path, dict(self.headers), body))
            status = state.statuses[min(len(state.requests), len(state.statuses)) - 1]
            if state.delay:
                time.sleep(state.delay)
            self.send_response(status)
            if state.location:
                self.send_header("Location", state.location)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    port = server.server_address[1]
    state.url = (f"https://localhost:{port}/hooks/werkplaats?source=werkplaats" if tls else
                 f"http://127.0.0.1:{port}/hooks/werkplaats?source=werkplaats")
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _service(tmp_path: Path, allow_loopback: bool) -> Service:
    settings = Settings.from_env("scheduling", {
        "WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/scheduling.sqlite3", "WERKPLAATS_DATA_DIR": str(tmp_path),
        "WERKPLAATS_SECRET_KEY": SECRET_KEY, "WERKPLAATS_WEBHOOK_ALLOW_LOOPBACK": str(allow_loopback).lower()})
    infra = scheduling_bootstrap.bootstrap(settings)
    app = create_scheduling_app(infra)
    tables: list[Any] = [orm.Webhook.__table__, orm.Notice.__table__, orm.Delivery.__table__, orm.outbox]
    svc = Service(infra, app, app.test_client(), tables)
    svc.add_key("firm", "firm-1", "entrepreneur")
    svc.add_key("other_firm", "firm-2", "entrepreneur")
    svc.add_key("coord", "coord-1", "coordinator")
    return svc


@pytest.fixture
def strict(tmp_path: Path) -> Iterator[Service]:
    svc = _service(tmp_path, allow_loopback=False)
    yield svc
    svc.infra.engine.dispose()


@pytest.fixture
def testing(tmp_path: Path) -> Iterator[Service]:
    svc = _service(tmp_path, allow_loopback=True)
    yield svc
    svc.infra.engine.dispose()


def _publish(svc: Service, firm: str = "firm-1", named: bool = False) -> str:
    """A run with one match for ``firm`` (``named``: announced by intake first, with its names); returns the
    notice id."""
    run_id = str(uuid.uuid4())
    svc.handle(announced_then(services.on_matches_published) if named else services.on_matches_published,
               make_envelope("matches.published", 1, {
        "run_id": run_id, "batch_id": str(uuid.uuid4()), "workspace_id": str(uuid.uuid4()),
        "coordinator_id": "coord-1", "period": "2027-S1", "unmatched_assignment_ids": [],
        "matches": [{"match_id": str(uuid.uuid4()), "assignment_id": str(uuid.uuid4()),
                     "team_id": str(uuid.uuid4()), "firm_id": firm, "institution_id": "inst-1", "score": 0.7}]}))
    with svc.infra.session_factory() as session:
        return str(session.execute(sa.select(orm.Notice.id).where(orm.Notice.run_id == run_id)).scalar_one())


def _deliver(svc: Service, client: WebhookClient | None = None, now: datetime | None = None) -> int:
    return services.deliver_webhooks(svc.infra.session_factory, client or WebhookClient(allow_loopback=True),
                                     ResponseLinks(SECRET_KEY, svc.infra.settings.public_url),
                                     now=(lambda: now) if now else utcnow)


def _register(svc: Service, url: str) -> str:
    resp = svc.put("firm", "/webhook", {"url": url})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    secret = resp.get_json()["secret"]
    assert isinstance(secret, str) and len(secret) >= 32
    return str(secret)


# ---- registration ---------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "reason"), [
    ("http://93.184.215.14/hook", "https"),
    ("ftp://93.184.215.14/hook", "https"),
    ("https://127.0.0.1/hook", "loopback"),
    ("https://127.8.9.10:8443/hook", "loopback"),
    ("https://[::1]/hook", "loopback"),
    ("https://[::ffff:127.0.0.1]/hook", "loopback"),
    ("https://localhost/hook", "loopback"),  # a name that resolves to loopback
    ("https://10.1.2.3/hook", "private"),
    ("https://192.168.1.20/hook", "private"),
    ("https://172.16.0.1/hook", "private"),
    ("https://[fd00::1]/hook", "private"),
    ("https://169.254.169.254/latest/meta-data", "link-local"),
    ("https://[fe80::1]/hook", "link-local"),
    ("https://0.0.0.0/hook", "public"),
    ("https://100.64.0.1/hook", "public"),
    ("https://224.0.0.1/hook", "public"),
    ("https://user:pw@93.184.215.14/hook", "user name"),
    ("https://93.184.215.14/hook#frag", "fragment"),
    ("https:///hook", "host"),
    ("https://exa mple.nl/hook", "spaces"),
    ("https://name.invalid/hook", "resolve"),
])
def test_registration_refuses_targets_that_are_not_public_https(strict: Service, url: str, reason: str) -> None:
    before = strict.snapshot()
    body = assert_error(strict.put("firm", "/webhook", {"url": url}), 422, "url")
    assert reason in body["errors"][0]["reason"], body
    assert strict.snapshot() == before
    assert_error(strict.get("firm", "/webhook"), 404)


def test_registration_of_a_public_https_target_shows_the_secret_once(strict: Service) -> None:
    first = strict.put("firm", "/webhook", {"url": PUBLIC_IP_URL})
    assert first.status_code == 200, first.get_data(as_text=True)
    secret = first.get_json()["secret"]
    assert secret.startswith("whsec_") and first.get_json()["url"] == PUBLIC_IP_URL
    shown = strict.get("firm", "/webhook")
    assert shown.status_code == 200 and set(shown.get_json()) == {"url", "created_at", "updated_at"}
    # changing the URL keeps the secret (not shown again); rotating shows a new one, once
    moved = strict.put("firm", "/webhook", {"url": PUBLIC_IP_URL + "/v2"})
    assert moved.status_code == 200 and "secret" not in moved.get_json()
    rotated = strict.put("firm", "/webhook", {"url": PUBLIC_IP_URL, "rotate_secret": True}).get_json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != secret
    assert "whsec_" not in strict.get("firm", "/webhook").get_data(as_text=True)
    # each firm has its own webhook; others see none
    assert_error(strict.get("other_firm", "/webhook"), 404)
    assert strict.call("firm", "DELETE", "/webhook").status_code == 204
    assert_error(strict.get("firm", "/webhook"), 404)
    assert_error(strict.call("firm", "DELETE", "/webhook"), 404)


def test_webhook_is_for_entrepreneurs_only_and_rejects_unknown_fields(strict: Service) -> None:
    before = strict.snapshot()
    assert_error(strict.put("coord", "/webhook", {"url": PUBLIC_IP_URL}), 403)
    assert_error(strict.get("coord", "/webhook"), 403)
    assert_error(strict.put("firm", "/webhook", {"url": PUBLIC_IP_URL, "secret": "mine"}), 422, "secret")
    assert_error(strict.put("firm", "/webhook", {"url": "x" * 3000}), 422, "url")
    assert_error(strict.put("firm", "/webhook", {}), 422, "url")
    assert strict.snapshot() == before


def test_the_loopback_setting_allows_loopback_only(testing: Service, receiver: Receiver) -> None:
    assert testing.put("firm", "/webhook", {"url": receiver.url}).status_code == 200
    for url, reason in (("http://93.184.215.14/hook", "loopback targets only"),
                        ("https://10.1.2.3/hook", "private"), ("http://10.1.2.3/hook", "loopback targets only")):
        body = assert_error(testing.put("firm", "/webhook", {"url": url}), 422, "url")
        assert reason in body["errors"][0]["reason"]


# ---- delivery -------------------------------------------------------------------------------


def test_a_notice_is_posted_signed_with_an_idempotency_key_and_logged(testing: Service, receiver: Receiver) -> None:
    secret = _register(testing, receiver.url)
    assert testing.put("firm", "/contact", CONTACT).status_code == 200
    notice_id = _publish(testing)
    other_notice = _publish(testing, firm="firm-2")  # no webhook: nothing is posted for it
    assert testing.get("firm", f"/notices/{notice_id}").get_json()["webhook_status"] == "pending"
    assert _deliver(testing) == 1
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request.path == "/hooks/werkplaats?source=werkplaats"
    assert request.headers["Idempotency-Key"] == notice_id
    assert request.headers["Content-Type"] == "application/json"
    [body] = receiver.verified(secret)
    assert body["id"] == notice_id and body["kind"] == "match_notice" and len(body["matches"]) == 1
    assert CONTACT["email"] not in request.body.decode()
    # a tampered body or a wrong secret fails the receiver's check
    with pytest.raises(AssertionError):
        receiver.verified("whsec_wrong")
    genuine = request.body
    request.body = genuine.replace(b"match_notice", b"match_notic3")
    with pytest.raises(AssertionError):
        receiver.verified(secret)
    request.body = genuine
    # the notice's accept/decline link in the webhook body works as an API
    link = body["matches"][0]["response_url"]
    answer = testing.client.post("/responses/" + link.split("/responses/", 1)[1], json={"decision": "accepted"})
    assert answer.status_code == 201
    # the match notice is delivered once; the acceptance made a kickoff notice, which is posted next
    assert _deliver(testing) == 1 and len(receiver.requests) == 2
    kickoff = receiver.verified(secret)[1]
    assert kickoff["kind"] == "kickoff_notice" and kickoff["kickoff"]["timezone"] == "Europe/Amsterdam"
    assert kickoff["matches"] == [{k: v for k, v in body["matches"][0].items() if k != "response_url"}]
    assert receiver.requests[1].headers["Idempotency-Key"] == kickoff["id"] != notice_id
    assert _deliver(testing) == 0 and len(receiver.requests) == 2
    notice = testing.get("firm", f"/notices/{notice_id}").get_json()
    assert (notice["webhook_status"], notice["webhook_attempts"]) == ("delivered", 1)
    log = testing.get("firm", f"/notices/{notice_id}/deliveries").get_json()
    assert [(d["channel"], d["attempt"], d["status_code"], d["error"]) for d in log] == [("webhook", 1, 200, None)]
    assert testing.get("other_firm", f"/notices/{other_notice}").get_json()["webhook_status"] is None
    assert_error(testing.get("other_firm", f"/notices/{notice_id}/deliveries"), 404)


def test_a_webhook_body_names_what_the_mail_names_beside_the_ids(testing: Service, receiver: Receiver) -> None:
    secret = _register(testing, receiver.url)
    assert testing.put("firm", "/contact", {**CONTACT, "language": "en"}).status_code == 200
    _publish(testing, named=True)
    assert _deliver(testing) == 1
    [body] = receiver.verified(secret)
    assert body["version"] == 2 and body["language"] == "en"
    assert body["period"] == "2027-S1" and body["period_label"] == "semester 1, 2027"  # as the English mail says it
    assert body["coordinator"]["name"] == "Gemeente Testdorp (Digitale Werkplaats Regio Test)"
    [match] = body["matches"]
    assert {k: match[k] for k in ("title", "firm_name", "team_code", "institution_name", "level")} == {
        "title": title_of(match["assignment_id"]), "firm_name": "Bedrijf firm-1",
        "team_code": code_of(match["team_id"]), "institution_name": "Hogeschool Test", "level": "HBO"}
    assert {"match_id", "assignment_id", "team_id", "response_url"} <= set(match)  # the ids stay, for machines
    answer = testing.client.post("/responses/" + match["response_url"].split("/responses/", 1)[1],
                                 json={"decision": "accepted"})
    assert answer.status_code == 201
    assert _deliver(testing) == 1
    kickoff = receiver.verified(secret)[1]
    assert kickoff["kind"] == "kickoff_notice" and kickoff["kickoff"]["status"] == "TENTATIVE"
    assert kickoff["matches"][0]["title"] == title_of(match["assignment_id"])
    assert kickoff["matches"][0]["team_code"] == code_of(match["team_id"])
    assert kickoff["period_label"] == "semester 1, 2027"


def test_a_webhook_body_of_a_batch_intake_never_named_says_null_not_an_id(testing: Service,
                                                                          receiver: Receiver) -> None:
    secret = _register(testing, receiver.url)
    _publish(testing)
    assert _deliver(testing) == 1
    [body] = receiver.verified(secret)
    [match] = body["matches"]
    assert [match[k] for k in ("title", "firm_name", "team_code", "institution_name", "level")] == [None] * 5
    assert body["period_label"] == "semester 1 2027" and body["language"] == "nl"


def test_a_failing_receiver_gets_bounded_retries_with_backoff_and_the_log_shows_them(
        testing: Service, receiver: Receiver) -> None:
    secret = _register(testing, receiver.url)
    notice_id = _publish(testing)
    receiver.statuses = [500]
    now = utcnow()
    for _round in range(3 * MAX_ATTEMPTS):  # bounded: far more rounds than attempts
        _deliver(testing, now=now)
        _deliver(testing, now=now)  # within the backoff nothing is retried
        now += timedelta(hours=2)  # past any backoff
    assert len(receiver.requests) == MAX_ATTEMPTS
    assert {r.headers["Idempotency-Key"] for r in receiver.requests} == {notice_id}
    assert len(receiver.verified(secret)) == MAX_ATTEMPTS  # every attempt is signed
    notice = testing.get("firm", f"/notices/{notice_id}").get_json()
    assert (notice["webhook_status"], notice["webhook_attempts"]) == ("failed", MAX_ATTEMPTS)
    log = testing.get("firm", f"/notices/{notice_id}/deliveries").get_json()
    assert [(d["channel"], d["attempt"], d["status_code"], d["error"]) for d in log] == [
        ("webhook", n, 500, "HTTP 500") for n in range(1, MAX_ATTEMPTS + 1)]
    with testing.infra.session_factory() as session:
        assert session.get(orm.Notice, notice_id).webhook_next_attempt_at is None  # type: ignore[union-attr]


def test_backoff_doubles_and_a_receiver_that_recovers_gets_the_notice(testing: Service, receiver: Receiver) -> None:
    _register(testing, receiver.url)
    notice_id = _publish(testing)
    receiver.statuses = [503, 503, 204]
    start = utcnow()
    waits = []
    for _round in range(10):
        _deliver(testing, now=start)
        with testing.infra.session_factory() as session:
            notice = session.get(orm.Notice, notice_id)
        assert notice is not None
        if notice.webhook_status != "pending":
            break
        assert notice.webhook_next_attempt_at is not None
        due = notice.webhook_next_attempt_at.replace(tzinfo=UTC)  # SQLite hands back naive UTC
        waits.append(due - start)
        # one second before it is due: no attempt
        attempts = len(receiver.requests)
        _deliver(testing, now=due - timedelta(seconds=1))
        assert len(receiver.requests) == attempts
        start = due
    assert waits == [timedelta(seconds=30), timedelta(seconds=60)]
    assert len(receiver.requests) == 3
    log = testing.get("firm", f"/notices/{notice_id}/deliveries").get_json()
    assert [(d["attempt"], d["status_code"], d["error"]) for d in log] == [
        (1, 503, "HTTP 503"), (2, 503, "HTTP 503"), (3, 204, None)]
    assert testing.get("firm", f"/notices/{notice_id}").get_json()["webhook_status"] == "delivered"


def test_redirects_are_not_followed(testing: Service, receiver: Receiver) -> None:
    _register(testing, receiver.url)
    notice_id = _publish(testing)
    receiver.statuses, receiver.location = [302], receiver.url.replace("/hooks/", "/elsewhere/")
    assert _deliver(testing) == 0
    assert [r.path for r in receiver.requests] == ["/hooks/werkplaats?source=werkplaats"]
    log = testing.get("firm", f"/notices/{notice_id}/deliveries").get_json()
    assert [(d["status_code"], d["error"]) for d in log] == [(302, "redirect not followed")]


def test_a_slow_receiver_times_out(testing: Service, receiver: Receiver) -> None:
    _register(testing, receiver.url)
    notice_id = _publish(testing)
    receiver.delay = 1.5
    started = time.monotonic()
    assert _deliver(testing, WebhookClient(allow_loopback=True, timeout=0.3)) == 0
    assert time.monotonic() - started < 1.5
    log = testing.get("firm", f"/notices/{notice_id}/deliveries").get_json()
    assert [(d["status_code"], d["error"]) for d in log] == [(None, "timeout")]


def test_the_target_is_checked_again_when_sending(testing: Service, receiver: Receiver) -> None:
    _register(testing, receiver.url)
    notice_id = _publish(testing)
    # the same registration, sent by a worker without the loopback setting: refused, nothing sent
    assert _deliver(testing, WebhookClient(allow_loopback=False)) == 0
    # a name that resolved to a public address at registration now resolves to a private one
    with testing.infra.session_factory.begin() as session:
        hook = session.get(orm.Webhook, "firm-1")
        assert hook is not None
        hook.url = "https://hooks.firm.example/werkplaats"
        session.get(orm.Notice, notice_id).webhook_next_attempt_at = None  # type: ignore[union-attr]
    rebound = WebhookClient(resolve=lambda host, port: ["93.184.215.14", "10.0.0.5"], allow_loopback=True)
    assert _deliver(testing, rebound) == 0
    assert receiver.requests == []
    log = testing.get("firm", f"/notices/{notice_id}/deliveries").get_json()
    assert [(d["status_code"], d["error"]) for d in log] == [
        (None, "target refused: webhook URLs must use https"),  # http to loopback: only with the setting
        (None, "target refused: host resolves to a private address")]


def test_a_removed_webhook_cancels_pending_deliveries(testing: Service, receiver: Receiver) -> None:
    _register(testing, receiver.url)
    notice_id = _publish(testing)
    assert testing.call("firm", "DELETE", "/webhook").status_code == 204
    assert _deliver(testing) == 0
    assert receiver.requests == []
    assert testing.get("firm", f"/notices/{notice_id}").get_json()["webhook_status"] == "cancelled"


def test_https_delivery_verifies_the_certificate_of_the_name_while_connecting_to_the_checked_address(
        testing: Service, tls_receiver: tuple[Receiver, ssl.SSLContext]) -> None:
    receiver, trusted = tls_receiver
    secret = _register(testing, receiver.url)  # https://localhost:<port>/...
    notice_id = _publish(testing)
    # a certificate nobody vouches for is refused, and logged as such
    assert _deliver(testing, WebhookClient(allow_loopback=True, timeout=5)) == 0
    assert receiver.requests == []
    with testing.infra.session_factory.begin() as session:
        session.get(orm.Notice, notice_id).webhook_next_attempt_at = None  # type: ignore[union-attr]
    # with the receiver's certificate trusted, the notice arrives, signed
    assert _deliver(testing, WebhookClient(allow_loopback=True, timeout=5, tls=trusted)) == 1
    [body] = receiver.verified(secret)
    assert body["id"] == notice_id and receiver.requests[0].headers["Host"].startswith("localhost")
    log = testing.get("firm", f"/notices/{notice_id}/deliveries").get_json()
    assert [(d["status_code"], d["error"]) for d in log] == [(None, "TLS error"), (200, None)]
