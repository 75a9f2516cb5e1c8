"""Scheduling's rules for webhooks and signed links, and its settings."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from flask import Flask
from scheduling import bootstrap as scheduling_bootstrap
from scheduling.adapters.links import ResponseLinks
from scheduling.domain import webhooks as wh
from scheduling.domain.responses import LinkExpired, LinkInvalid, responded_payload
from werkplaats_shared.auth import install_auth
from werkplaats_shared.config import Settings
from werkplaats_shared.db import make_engine, messaging_tables

KEY = "unit-test-secret-key-0123456789abcdef"


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    body = b'{"id":"n-1"}'
    expected = hmac.new(b"whsec_abc", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert wh.sign("whsec_abc", "1700000000", body) == f"sha256={expected}"
    assert wh.sign("whsec_abc", "1700000001", body) != wh.sign("whsec_abc", "1700000000", body)
    assert wh.sign("whsec_abd", "1700000000", body) != wh.sign("whsec_abc", "1700000000", body)


def test_backoff_doubles_from_30_seconds_and_is_capped() -> None:
    assert [wh.next_delay(n).total_seconds() for n in range(1, 6)] == [30, 60, 120, 240, 480]
    assert wh.next_delay(30) == timedelta(hours=1)
    # all retries together stay bounded: the last attempt is made within a day
    assert sum((wh.next_delay(n) for n in range(1, wh.MAX_ATTEMPTS)), timedelta()) < timedelta(days=1)


@pytest.mark.parametrize(("address", "allowed_strict", "allowed_testing"), [
    ("93.184.215.14", True, True),
    ("2606:2800:220:1:248:1893:25c8:1946", True, True),
    ("127.0.0.1", False, True),
    ("::1", False, True),
    ("::ffff:127.0.0.1", False, True),
    ("10.0.0.1", False, False),
    ("::ffff:10.0.0.1", False, False),
    ("169.254.169.254", False, False),
    ("fe80::1%eth0", False, False),
    ("0.0.0.0", False, False),
    ("239.1.2.3", False, False),
])
def test_only_public_addresses_and_with_the_test_setting_loopback(
        address: str, allowed_strict: bool, allowed_testing: bool) -> None:
    assert (wh.address_refusal(address, "https") is None) == allowed_strict
    assert (wh.address_refusal(address, "https", allow_loopback=True) is None) == allowed_testing


def test_http_only_for_loopback_and_only_with_the_test_setting() -> None:
    with pytest.raises(wh.TargetRefused, match="https"):
        wh.parse_target("http://127.0.0.1:9000/hook")
    target = wh.parse_target("http://127.0.0.1:9000/hook?x=1", allow_loopback=True)
    assert (target.scheme, target.host, target.port, target.path) == ("http", "127.0.0.1", 9000, "/hook?x=1")
    assert wh.address_refusal("93.184.215.14", "http", allow_loopback=True) is not None
    assert wh.parse_target("https://Hooks.Example.NL./in").host == "hooks.example.nl"
    assert wh.parse_target("https://hooks.example.nl").port == 443


def test_every_resolved_address_must_be_allowed() -> None:
    with pytest.raises(wh.TargetRefused, match="private"):
        wh.vet_target("https://hooks.example.nl/", lambda h, p: ["93.184.215.14", "10.0.0.7"])
    with pytest.raises(wh.TargetRefused, match="resolve"):
        wh.vet_target("https://hooks.example.nl/", lambda h, p: [])

    def fails(host: str, port: int) -> list[str]:
        raise OSError("no such name")

    with pytest.raises(wh.TargetRefused, match="resolve"):
        wh.vet_target("https://hooks.example.nl/", fails)
    assert wh.vet_target("https://hooks.example.nl/", lambda h, p: ["93.184.215.14"])[1] == ["93.184.215.14"]


def test_links_name_their_match_expire_after_14_days_and_cannot_be_forged() -> None:
    links = ResponseLinks(KEY, "https://w.example.nl/")
    token = links.issue("notice-1", "match-1")
    assert links.url(token) == f"https://w.example.nl/responses/{token}"
    target = links.read(token)
    assert (target.notice_id, target.match_id) == ("notice-1", "match-1")
    old = ResponseLinks(KEY, "https://w.example.nl", clock=lambda: time.time() - 14 * 86400 - 5)
    with pytest.raises(LinkExpired) as expired:
        links.read(old.issue("notice-1", "match-1"))
    assert expired.value.match_id == "match-1"
    for bad in (token[:-2], token + "x", ResponseLinks(KEY + "x", "x").issue("notice-1", "match-1"), ""):
        with pytest.raises(LinkInvalid):
            links.read(bad)
    with pytest.raises(ValueError, match="WERKPLAATS_SECRET_KEY"):
        ResponseLinks("short", "x")


def test_the_responded_payload_holds_ids_and_the_answer_only() -> None:
    notice = SimpleNamespace(run_id="r", batch_id="b", firm_id="f")
    match = {"match_id": "m", "assignment_id": "a", "team_id": "t", "response_url": "https://secret"}
    at = datetime(2027, 2, 3, 10, 0, tzinfo=UTC)
    assert responded_payload(notice, match, "declined", at) == {
        "match_id": "m", "run_id": "r", "batch_id": "b", "assignment_id": "a", "team_id": "t", "firm_id": "f",
        "response": "declined", "responded_at": "2027-02-03T10:00:00+00:00"}
    with pytest.raises(ValueError):
        responded_payload(notice, match, "maybe", at)


def test_scheduling_settings_and_the_secret_key() -> None:
    s = Settings.from_env("scheduling", {"WERKPLAATS_SECRET_KEY": KEY})
    assert s.webhook_allow_loopback is False
    assert s.public_url == "http://127.0.0.1:8103"
    assert KEY not in repr(s)
    on = Settings.from_env("scheduling", {"WERKPLAATS_WEBHOOK_ALLOW_LOOPBACK": "true",
                                          "WERKPLAATS_PUBLIC_URL": "https://w.example.nl/api/"})
    assert on.webhook_allow_loopback is True and on.public_url == "https://w.example.nl/api"
    with pytest.raises(ValueError):
        Settings.from_env("scheduling", {"WERKPLAATS_WEBHOOK_ALLOW_LOOPBACK": "yes please"})
    for missing in ({}, {"WERKPLAATS_SECRET_KEY": "too-short"}):
        with pytest.raises(ValueError, match="WERKPLAATS_SECRET_KEY"):
            scheduling_bootstrap.bootstrap(Settings.from_env("scheduling", missing))


def test_public_prefixes_open_only_their_paths_and_must_be_well_formed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'k.sqlite3'}")
    metadata = sa.MetaData()
    _, _, api_keys = messaging_tables(metadata)
    metadata.create_all(engine)
    app = Flask("t")
    install_auth(app, engine, api_keys, public_prefixes=("/open/",))
    app.add_url_rule("/open/<x>", "open", lambda x: "ok")
    app.add_url_rule("/openly", "openly", lambda: "ok")
    client = app.test_client()
    assert client.get("/open/abc").status_code == 200
    assert client.get("/openly").status_code == 401
    default = Flask("d")
    install_auth(default, engine, api_keys)
    default.add_url_rule("/open/<x>", "open", lambda x: "ok")
    assert default.test_client().get("/open/abc").status_code == 401
    for bad in (("open/",), ("/open",)):
        with pytest.raises(ValueError):
            install_auth(Flask("b"), engine, api_keys, public_prefixes=bad)
    engine.dispose()
