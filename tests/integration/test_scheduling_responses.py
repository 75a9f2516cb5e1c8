"""Match notices by e-mail with signed accept/decline links, against a real SMTP server (aiosmtpd on
loopback), and the answers through those links (Flask's test client on SQLite): recorded once, sent
on as ``match.responded`` through the outbox; forged, expired and repeated answers change nothing."""

from __future__ import annotations

import email
import email.policy
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from scheduling import bootstrap as scheduling_bootstrap
from scheduling.adapters import orm
from scheduling.adapters.links import ResponseLinks
from scheduling.adapters.mailer import SmtpMailer
from scheduling.entrypoints.api import create_scheduling_app
from scheduling.service_layer import services
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import MatchRespondedV1, make_envelope

from ..conftest import free_port
from .test_matching_scheduling_api import SECRET_KEY, Service, assert_error

PUBLIC_URL = "https://werkplaats.example.nl/scheduling"
COORDINATOR_EMAIL = "werkplaats@amsterdam.example.nl"
# what intake announces of the batch (batch.announced v2): the names the firms read
TITLES = {"a1": "Webshop voor de bakkerij", "a2": "Cyberscan van het kassasysteem",
          "a3": "Online booking for the salon"}
CODES = {"t1": "HVA-WEB-01", "t2": "ROC-NET-02", "t3": "UVA-DATA-03"}
CONTACTS = {"firm_nl": {"email": "planning@bakkerij-jansen.nl", "language": "nl"},
            "firm_en": {"email": "office@kapsalon-bloem.nl", "language": "en"}}


class _Collector:
    """aiosmtpd handler keeping every received message, parsed, in memory."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[int, _Collector]]:
    collector = _Collector()
    port = free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, collector
    finally:
        controller.stop()


@dataclass
class Firms:
    svc: Service
    org: dict[str, str]
    ids: dict[str, str]
    links: ResponseLinks


@pytest.fixture
def firms(tmp_path: Path) -> Iterator[Firms]:
    settings = Settings.from_env("scheduling", {
        "WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/scheduling.sqlite3", "WERKPLAATS_DATA_DIR": str(tmp_path),
        "WERKPLAATS_SECRET_KEY": SECRET_KEY, "WERKPLAATS_PUBLIC_URL": PUBLIC_URL})
    infra = scheduling_bootstrap.bootstrap(settings)
    app = create_scheduling_app(infra)
    tables: list[Any] = [orm.Notice.__table__, orm.MatchResponse.__table__, orm.outbox, orm.Delivery.__table__]
    svc = Service(infra, app, app.test_client(), tables)
    org = {who: str(uuid.uuid4()) for who in ("coord", "firm_nl", "firm_en", "inst")}
    try:
        for who, role in (("coord", "coordinator"), ("firm_nl", "entrepreneur"), ("firm_en", "entrepreneur")):
            svc.add_key(who, org[who], role)
        for who, contact in CONTACTS.items():
            assert svc.put(who, "/contact", contact).status_code == 200
        assert svc.put("coord", "/contact", {"email": COORDINATOR_EMAIL, "language": "nl"}).status_code == 200
        ids = {name: str(uuid.uuid4()) for name in ("run", "batch", "a1", "a2", "a3", "t1", "t2", "t3",
                                                     "m1", "m2", "m3", "workspace")}
        # firm_nl has two matches in the run, firm_en one
        matches = [(ids["m1"], ids["a1"], ids["t1"], "firm_nl"), (ids["m2"], ids["a2"], ids["t2"], "firm_nl"),
                   (ids["m3"], ids["a3"], ids["t3"], "firm_en")]
        svc.handle(services.on_workspace_registered, make_envelope("workspace.registered", 1, {
            "workspace_id": ids["workspace"], "coordinator_id": org["coord"],
            "registered_at": "2026-11-01T09:00:00+00:00"}))
        svc.handle(services.on_batch_announced, make_envelope("batch.announced", 2, {
            "batch_id": ids["batch"], "workspace_id": ids["workspace"], "coordinator_id": org["coord"],
            "workspace_name": "Digitale Werkplaats MRA", "coordinator_name": "Gemeente Amsterdam",
            "period": {"code": "2027-S1", "starts_on": "2027-02-01", "ends_on": "2027-06-30"},
            "assignments": [{"assignment_id": ids[a], "firm_id": org[f], "title": TITLES[a],
                             "firm_name": {"firm_nl": "Bakkerij Jansen", "firm_en": "Kapsalon Bloem"}[f]}
                            for a, f in (("a1", "firm_nl"), ("a2", "firm_nl"), ("a3", "firm_en"))],
            "teams": [{"team_id": ids[t], "institution_id": org["inst"], "code": CODES[t],
                       "institution_name": "Hogeschool van Amsterdam", "level": "HBO", "skills": ["web", "data"]}
                      for t in ("t1", "t2", "t3")]}))
        svc.handle(services.on_verified_matches_published, make_envelope("matches.published", 1, {
            "run_id": ids["run"], "batch_id": ids["batch"], "workspace_id": ids["workspace"],
            "coordinator_id": org["coord"], "period": "2027-S1", "unmatched_assignment_ids": [],
            "matches": [{"match_id": m, "assignment_id": a, "team_id": t, "firm_id": org[f],
                         "institution_id": org["inst"], "score": 0.8} for m, a, t, f in matches]}))
        yield Firms(svc, org, ids, ResponseLinks(SECRET_KEY, PUBLIC_URL))
    finally:
        infra.engine.dispose()


def _notice_id(f: Firms, firm: str) -> str:
    with f.svc.infra.session_factory() as session:
        return str(session.execute(sa.select(orm.Notice.id).where(orm.Notice.firm_id == f.org[firm])).scalar_one())


def _send_all(f: Firms, port: int) -> int:
    return services.send_pending(f.svc.infra.session_factory, SmtpMailer("127.0.0.1", port, "werkplaats@test"),
                                 f.links)


def _links_in(message: EmailMessage) -> list[str]:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return re.findall(r"https?://\S+/responses/\S+", body.get_content())


def _path(url: str) -> str:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" + parts.path.split("/responses/")[0] == PUBLIC_URL
    return "/responses/" + parts.path.split("/responses/", 1)[1]


def _outbox(f: Firms) -> list[dict[str, Any]]:
    with f.svc.infra.engine.connect() as conn:
        return [json.loads(r.body) for r in conn.execute(sa.select(orm.outbox).order_by(orm.outbox.c.created_at))]


def _post_form(f: Firms, path: str, decision: str) -> Any:
    return f.svc.client.post(path, data={"decision": decision})


# ---- e-mail over real SMTP ------------------------------------------------------------------


def test_notices_arrive_by_smtp_in_the_firms_language_with_one_working_link_per_match(
        firms: Firms, smtp: tuple[int, _Collector]) -> None:
    port, inbox = smtp
    assert _send_all(firms, port) == 2
    assert len(inbox.messages) == 2
    by_to = {m["To"]: m for m in inbox.messages}
    nl, en = by_to[CONTACTS["firm_nl"]["email"]], by_to[CONTACTS["firm_en"]["email"]]
    assert [rcpts for _, rcpts in inbox.envelopes if rcpts == [CONTACTS["firm_nl"]["email"]]]
    # Dutch for the Dutch contact, English for the English one: subject, body, Content-Language
    assert nl["Content-Language"] == "nl" and en["Content-Language"] == "en"
    assert nl["Subject"] == "Er is een studententeam voor 2 van uw opdrachten"
    assert en["Subject"] == f'We have found a student team for your assignment "{TITLES["a3"]}"'
    nl_text = nl.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    en_text = en.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "Accepteren of afwijzen" in nl_text and "Laat het ons uiterlijk" in nl_text
    assert "Accept or decline" not in nl_text
    assert "Accept or decline" in en_text and "at the latest" in en_text and "opdracht" not in en_text
    # names, not ids: the assignments' titles, the teams' codes with their institution, the period, whom to ask
    for text, names in ((nl_text, ("a1", "a2", "t1", "t2")), (en_text, ("a3", "t3"))):
        for name in names:
            assert {**TITLES, **CODES}[name] in text and firms.ids[name] not in text
        assert "Hogeschool van Amsterdam" in text and COORDINATOR_EMAIL in text and "2027-S1" not in text
    assert "semester 1 2027" in nl_text and "semester 1, 2027" in en_text
    # one link per match, under the public URL; the Dutch firm has two matches, the English one one
    nl_links, en_links = _links_in(nl), _links_in(en)
    assert len(nl_links) == 2 and len(set(nl_links)) == 2 and len(en_links) == 1
    ids = firms.ids
    pages = {}
    for url in nl_links + en_links:
        resp = firms.svc.client.get(_path(url))  # no API key: the link itself is the credential
        assert resp.status_code == 200 and resp.mimetype == "text/html"
        pages[url] = resp.get_data(as_text=True)
    nl_pages = [pages[u] for u in nl_links]
    assert any(TITLES["a1"] in p and CODES["t1"] in p for p in nl_pages)
    assert any(TITLES["a2"] in p and CODES["t2"] in p for p in nl_pages)
    assert not [p for p in nl_pages if ids["a1"] in p or ids["t1"] in p or ids["m1"] in p]
    for page in nl_pages:
        assert '<html lang="nl">' in page and "Accepteren" in page and "Afwijzen" in page
        assert 'name="decision" value="accepted"' in page and 'name="decision" value="declined"' in page
    en_page = pages[en_links[0]]
    assert '<html lang="en">' in en_page and ">Accept<" in en_page and ">Decline<" in en_page
    assert TITLES["a3"] in en_page and CODES["t3"] in en_page and COORDINATOR_EMAIL in en_page
    # the delivery log shows one successful e-mail attempt per notice, without the address
    notice_id = _notice_id(firms, "firm_nl")
    log = firms.svc.get("firm_nl", f"/notices/{notice_id}/deliveries")
    assert log.status_code == 200
    assert [(d["channel"], d["attempt"], d["error"]) for d in log.get_json()] == [("email", 1, None)]
    # no address: the only "@" is the notice's Message-ID, the same on every attempt
    assert "@" not in log.get_data(as_text=True).replace(f"<{notice_id}@werkplaats>", "")


def test_an_unreachable_smtp_server_is_retried_and_logged_then_the_mail_arrives(
        firms: Firms, smtp: tuple[int, _Collector]) -> None:
    port, inbox = smtp
    assert _send_all(firms, free_port()) == 0  # nothing listens there
    notice_id = _notice_id(firms, "firm_en")
    log = firms.svc.get("firm_en", f"/notices/{notice_id}/deliveries").get_json()
    assert [(d["channel"], d["attempt"]) for d in log] == [("email", 1)] and log[0]["error"]
    with firms.svc.infra.session_factory.begin() as session:  # let the backoff pass
        for notice in session.execute(sa.select(orm.Notice)).scalars():
            assert notice.status == "pending" and notice.next_attempt_at is not None
            notice.next_attempt_at = None
    assert _send_all(firms, port) == 2
    assert len(inbox.messages) == 2
    log = firms.svc.get("firm_en", f"/notices/{notice_id}/deliveries").get_json()
    assert [(d["attempt"], d["error"]) for d in log][1] == (2, None)


# ---- answering through the link -------------------------------------------------------------


def test_accepting_through_the_mailed_link_records_once_and_emits_match_responded(
        firms: Firms, smtp: tuple[int, _Collector]) -> None:
    port, inbox = smtp
    _send_all(firms, port)
    mail = next(m for m in inbox.messages if m["To"] == CONTACTS["firm_en"]["email"])
    path = _path(_links_in(mail)[0])
    assert _outbox(firms) == []
    resp = _post_form(firms, path, "accepted")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    page = resp.get_data(as_text=True)
    assert "has been saved" in page and "<strong>accepted</strong>" in page and TITLES["a3"] in page
    assert resp.headers["Referrer-Policy"] == "no-referrer" and resp.headers["Cache-Control"] == "no-store"
    # the outbox holds exactly one match.responded with ids and the answer only
    messages = _outbox(firms)
    assert [(m["type"], m["version"], m["producer"]) for m in messages] == [("match.responded", 1, "scheduling")]
    payload = messages[0]["payload"]
    assert set(payload) == set(MatchRespondedV1().fields)
    ids, org = firms.ids, firms.org
    assert {k: v for k, v in payload.items() if k != "responded_at"} == {
        "match_id": ids["m3"], "run_id": ids["run"], "batch_id": ids["batch"], "assignment_id": ids["a3"],
        "team_id": ids["t3"], "firm_id": org["firm_en"], "response": "accepted"}
    assert "@" not in json.dumps(messages) and "responses/" not in json.dumps(messages)
    # the page now shows the answer instead of the buttons
    again = firms.svc.client.get(path).get_data(as_text=True)
    assert "already answered" in again and 'name="decision"' not in again and CODES["t3"] in again
    # a second answer is refused, in the page and in JSON, and changes nothing
    before = firms.svc.snapshot()
    second = _post_form(firms, path, "declined")
    assert second.status_code == 409 and "You can answer only once" in second.get_data(as_text=True)
    assert "<strong>accepted</strong>" in second.get_data(as_text=True)
    body = assert_error(firms.svc.client.post(path, json={"decision": "declined"}), 409, "decision")
    assert "already answered" in body["message"]
    assert firms.svc.snapshot() == before


def test_declining_through_the_json_api_and_reading_the_link_as_json(firms: Firms) -> None:
    notice_id, ids = _notice_id(firms, "firm_nl"), firms.ids
    path = "/responses/" + firms.links.issue(notice_id, ids["m2"])
    view = firms.svc.client.get(path, headers={"Accept": "application/json"})
    assert view.status_code == 200 and view.is_json
    assert view.get_json() == {"notice_id": notice_id, "match_id": ids["m2"], "assignment_id": ids["a2"],
                               "team_id": ids["t2"], "period": "2027-S1", "response": None}
    resp = firms.svc.client.post(path, json={"decision": "declined"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert resp.get_json()["match_id"] == ids["m2"] and resp.get_json()["decision"] == "declined"
    payloads = [m["payload"] for m in _outbox(firms)]
    assert [(p["match_id"], p["response"]) for p in payloads] == [(ids["m2"], "declined")]
    assert firms.svc.client.get(path, headers={"Accept": "application/json"}).get_json()["response"][
        "decision"] == "declined"
    # the other match of the same notice is still open: answers are per match
    other = "/responses/" + firms.links.issue(notice_id, ids["m1"])
    assert firms.svc.client.post(other, json={"decision": "accepted"}).status_code == 201
    assert [(m["payload"]["match_id"], m["payload"]["response"]) for m in _outbox(firms)] == [
        (ids["m2"], "declined"), (ids["m1"], "accepted")]


def _tamper(token: str) -> list[str]:
    payload, stamp, signature = token.rsplit(".", 2)
    flipped = signature[:-3] + ("AAA" if signature[-3:] != "AAA" else "BBB")
    return [f"{payload}.{stamp}.{flipped}", token[:-1], "not-a-token", token.replace(payload, payload[::-1]),
            f"{payload}.{stamp}", "." * 3]


def test_forged_or_altered_links_are_refused_with_403_and_change_nothing(firms: Firms) -> None:
    notice_id, ids = _notice_id(firms, "firm_nl"), firms.ids
    token = firms.links.issue(notice_id, ids["m1"])
    other_key = ResponseLinks("another-secret-key-that-is-long-enough-123", PUBLIC_URL)
    forged = [*_tamper(token), other_key.issue(notice_id, ids["m1"])]
    before = firms.svc.snapshot()
    for bad in forged:
        page = firms.svc.client.get(f"/responses/{bad}")
        assert page.status_code == 403 and "niet geldig" in page.get_data(as_text=True), bad
        assert _post_form(firms, f"/responses/{bad}", "accepted").status_code == 403
        assert_error(firms.svc.client.post(f"/responses/{bad}", json={"decision": "accepted"}), 403, "token")
    assert firms.svc.snapshot() == before
    # a genuine link still works afterwards
    assert firms.svc.client.post(f"/responses/{token}", json={"decision": "accepted"}).status_code == 201


def test_an_expired_link_is_refused_with_400_in_the_firms_language_and_changes_nothing(firms: Firms) -> None:
    notice_id, ids = _notice_id(firms, "firm_en"), firms.ids
    fifteen_days_ago = ResponseLinks(SECRET_KEY, PUBLIC_URL, clock=lambda: time.time() - 15 * 86400)
    thirteen_days_ago = ResponseLinks(SECRET_KEY, PUBLIC_URL, clock=lambda: time.time() - 13 * 86400)
    expired = fifteen_days_ago.issue(notice_id, ids["m3"])
    before = firms.svc.snapshot()
    page = firms.svc.client.get(f"/responses/{expired}")
    assert page.status_code == 400 and "This link has expired" in page.get_data(as_text=True)
    assert _post_form(firms, f"/responses/{expired}", "accepted").status_code == 400
    body = assert_error(firms.svc.client.post(f"/responses/{expired}", json={"decision": "accepted"}), 400, "token")
    assert "expired" in body["message"]
    assert firms.svc.snapshot() == before
    # 13 days old is still within the 14 days
    assert firms.svc.client.post(f"/responses/{thirteen_days_ago.issue(notice_id, ids['m3'])}",
                                 json={"decision": "accepted"}).status_code == 201


@pytest.mark.parametrize("body", [{"decision": "maybe"}, {}, {"decision": "accepted", "note": "x"},
                                  {"decision": ["accepted"]}])
def test_an_invalid_decision_is_422_and_changes_nothing(firms: Firms, body: dict[str, Any]) -> None:
    token = firms.links.issue(_notice_id(firms, "firm_nl"), firms.ids["m1"])
    before = firms.svc.snapshot()
    assert_error(firms.svc.client.post(f"/responses/{token}", json=body), 422)
    assert firms.svc.snapshot() == before


def test_a_genuine_link_to_an_unknown_match_is_404(firms: Firms) -> None:
    notice_id = _notice_id(firms, "firm_nl")
    for token in (firms.links.issue(notice_id, firms.ids["m3"]),  # a match of another firm's notice
                  firms.links.issue(str(uuid.uuid4()), firms.ids["m1"])):
        assert firms.svc.client.get(f"/responses/{token}").status_code == 404
        assert_error(firms.svc.client.post(f"/responses/{token}", json={"decision": "accepted"}), 404)
    assert _outbox(firms) == []


def test_only_the_response_pages_are_public(firms: Firms) -> None:
    assert_error(firms.svc.get(None, "/notices"), 401)
    assert_error(firms.svc.get(None, "/responsesX"), 401)
    assert_error(firms.svc.get(None, "/webhook"), 401)
    assert firms.svc.get(None, "/responses/x").status_code == 403  # past authentication, refused by the token


# ---- answering in the portal (signed in, no link) -------------------------------------------


def test_a_signed_in_firm_lists_its_matches_and_answers_each_once_like_the_link(firms: Firms) -> None:
    ids, svc = firms.ids, firms.svc
    listed = svc.get("firm_nl", "/match-answers")
    assert listed.status_code == 200
    rows = {m["match_id"]: m for m in listed.get_json()}
    assert set(rows) == {ids["m1"], ids["m2"]}  # the other firm's match is not listed
    assert rows[ids["m1"]]["assignment_id"] == ids["a1"] and rows[ids["m1"]]["team_id"] == ids["t1"]
    assert rows[ids["m1"]]["decision"] is None and rows[ids["m1"]]["period"] == "2027-S1"

    answered = svc.call("firm_nl", "POST", f"/match-answers/{ids['m1']}", {"decision": "accepted"})
    assert answered.status_code == 201, answered.get_json()
    assert answered.get_json()["decision"] == "accepted"
    sent = [b for b in _outbox(firms) if b["type"] == "match.responded"]
    assert [(b["payload"]["match_id"], b["payload"]["response"]) for b in sent] == [(ids["m1"], "accepted")]
    # the first answer stands, by link or in the portal
    again = svc.call("firm_nl", "POST", f"/match-answers/{ids['m1']}", {"decision": "declined"})
    assert again.status_code == 409
    link = firms.links.issue(rows[ids["m1"]]["notice_id"], ids["m1"])
    assert _post_form(firms, f"/responses/{link}", "declined").status_code == 409
    assert {m["match_id"]: m["decision"] for m in svc.get("firm_nl", "/match-answers").get_json()}[ids["m1"]] \
        == "accepted"
    assert len([b for b in _outbox(firms) if b["type"] == "match.responded"]) == 1


def test_a_firm_cannot_answer_another_firms_match_and_bad_decisions_are_refused(firms: Firms) -> None:
    ids, svc = firms.ids, firms.svc
    assert svc.call("firm_en", "POST", f"/match-answers/{ids['m1']}", {"decision": "accepted"}).status_code == 404
    assert svc.call("coord", "POST", f"/match-answers/{ids['m1']}", {"decision": "accepted"}).status_code == 403
    bad = svc.call("firm_nl", "POST", f"/match-answers/{ids['m1']}", {"decision": "maybe"})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "decision"
    assert not [b for b in _outbox(firms) if b["type"] == "match.responded"]


def test_a_delivered_match_notice_has_a_text_and_an_html_part_naming_the_assignment(
        firms: Firms, smtp: tuple[int, _Collector]) -> None:
    port, inbox = smtp
    _send_all(firms, port)
    mail = next(m for m in inbox.messages if m["To"] == CONTACTS["firm_en"]["email"])
    assert mail.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    text = mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    html = mail.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    for part in (text, html):
        assert TITLES["a3"] in part and CODES["t3"] in part and firms.ids["a3"] not in part
    # the same link in both parts, clickable in the HTML; inline styles only, nothing fetched from elsewhere
    link = _links_in(mail)[0]
    assert f'href="{link}"' in html and '<html lang="en">' in html
    assert "<img" not in html and "<style" not in html and "<link" not in html and "<script" not in html
