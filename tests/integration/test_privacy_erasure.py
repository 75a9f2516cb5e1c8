"""Erasure end to end: the three services run as separate processes, on the local default (the embedded
broker, SQLite per service) and on RabbitMQ + PostgreSQL. A team and a firm contact, with a unique marker in
every free-text field they have, go through registration, a matching round that is published, a re-run and
a sent notice; then both are erased and the batch is run again. Their markers must be in no table of any
service's database (outbox, inbox, snapshots and explanations included), no queue (dead-letter queues
included), no service's log and, on SQLite, no byte of a database file or its write-ahead log; the audit
trail of every service records the erasure."""

from __future__ import annotations

import functools
import json
import os
import secrets
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from kombu.connection import Connection
from werkplaats_shared import broker
from werkplaats_shared.audit import TABLE
from werkplaats_shared.config import Settings
from werkplaats_shared.devstack.demo import MUNICIPALITIES, PERIOD, PERIODS, wait_for
from werkplaats_shared.devstack.stack import SERVICES, LocalStack, StackConfig

from ..conftest import delete_namespace, free_port

pytestmark = pytest.mark.e2e

ERASURES = f"SELECT subject_type, subject_id, actor_organisation_id, message_id FROM {TABLE} WHERE action = 'erase'"  # noqa: S608
DENIED = f"SELECT actor_organisation_id, route, status FROM {TABLE} WHERE action = 'denied'"  # noqa: S608
FAST = {"WERKPLAATS_POLL_INTERVAL": "0.2", "WERKPLAATS_VISIBILITY_TIMEOUT": "5",
        "WERKPLAATS_SOLVER_TIME_LIMIT": "30"}


def call(base: str, key: str, method: str, path: str, body: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def etag(base: str, key: str, path: str) -> str:
    req = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return str(resp.headers["ETag"])


class Client:
    def __init__(self, stack: LocalStack, key: str) -> None:
        self.stack, self.key = stack, key

    def __call__(self, service: str, method: str, path: str, body: Any = None, expect: int | None = 200,
                 headers: dict[str, str] | None = None) -> Any:
        status, answer = call(self.stack.url(service), self.key, method, path, body, headers)
        if expect is not None:
            assert status == expect, (method, path, status, answer)
        return answer


def database_texts(url: str) -> dict[str, str]:
    """Every row of every table of one database, as text per table."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            out = {}
            for table in sa.inspect(conn).get_table_names():
                rows = conn.execute(sa.text(f'SELECT * FROM "{table}"')).all()  # noqa: S608 - names from the schema
                out[table] = "\n".join(repr(tuple(r)) for r in rows)
            return out
    finally:
        engine.dispose()


def select(url: str, query: str) -> list[Any]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(query)).all())
    finally:
        engine.dispose()


def queued_texts(stack: LocalStack, namespace: str) -> list[str]:
    """Drain every queue of the run's namespace, dead-letter queues included: bodies and headers."""
    settings = Settings.from_env("intake", {"WERKPLAATS_BROKER_URL": stack.broker_url,
                                            "WERKPLAATS_NAMESPACE": namespace})
    topology = broker.topology_for(settings)
    texts: list[str] = []
    with Connection(stack.broker_url, connect_timeout=10) as conn:
        for entity in topology.all_entities():
            if not hasattr(entity, "routing_key") or not hasattr(entity, "queue_arguments"):
                continue
            queue = conn.SimpleQueue(entity)
            try:
                while True:
                    try:
                        message = queue.get(block=False)
                    except queue.Empty:
                        break
                    texts.append(f"{message.body!r} {message.headers!r}")
                    message.ack()
            finally:
                queue.close()
    return texts


@pytest.fixture(params=["local", pytest.param("rabbitmq_postgres", marks=[pytest.mark.rabbitmq, pytest.mark.postgres])])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """The system on the local default (embedded broker, SQLite), or on RabbitMQ + PostgreSQL."""
    rabbit, databases = None, {}
    namespace = f"t{secrets.token_hex(5)}."
    if request.param == "rabbitmq_postgres":
        rabbit = str(request.getfixturevalue("rabbitmq_url"))
        make_db = request.getfixturevalue("make_postgres_db")
        databases = {s: make_db(s) for s in SERVICES}
    config = StackConfig(data_dir=str(tmp_path / "stack"), ports={s: free_port() for s in SERVICES},
                         smtp_port=free_port(), namespace=namespace, broker_url=rabbit,
                         database_urls=databases, extra_env=dict(FAST))
    running = LocalStack(config)
    running.start()
    try:
        yield running
    finally:
        running.stop()
        if rabbit:
            delete_namespace(rabbit, namespace)


def database_urls(stack: LocalStack) -> dict[str, str]:
    return {s: stack.config.database_urls.get(s) or f"sqlite:///{sqlite_path(stack, s)}" for s in SERVICES}


def sqlite_path(stack: LocalStack, service: str) -> str:
    return os.path.join(stack.data_dir, service + ".sqlite3")


def sqlite_bytes(stack: LocalStack) -> dict[str, bytes]:
    """The raw bytes of every service's SQLite database and of its write-ahead log, when there is one."""
    out = {}
    for service in SERVICES:
        for suffix in ("", "-wal"):
            path = Path(sqlite_path(stack, service) + suffix)
            if path.exists():
                out[path.name] = path.read_bytes()
    return out


def test_erased_team_and_firm_contact_leave_no_trace_and_the_audit_trail_records_it(stack: LocalStack) -> None:
    on_sqlite = not stack.config.database_urls
    m = secrets.token_hex(4)
    firm_name, team_code = f"Kapsalon Mrk{m}Naam", f"Team-Mrk{m}Code"
    email, address = f"mrk{m}mail@example.org", f"Mrk{m}straat 1, Zwolle"
    title, description = f"Mrk{m}Titel webshop", f"Bel Mrk{m}Persoon voor de sleutel"
    # skills are free text: an institution or a firm may type anything, a name included
    team_skill, firm_skill, wished_skill = f"mrk{m}teamskill", f"mrk{m}firmskill", f"mrk{m}wensskill"
    kvk = f"{secrets.randbelow(10**7) + 10**7}"
    markers = [firm_name, team_code, email, address, title, description, kvk, team_skill, firm_skill,
               wished_skill, f"Mrk{m}", f"mrk{m}"]

    created = stack.admin("create-organisations", stdin=json.dumps([
        {"name": "Werkplaats Privacy", "role": "coordinator"},
        {"name": "Hogeschool Privacy", "role": "institution", "levels": ["HBO"]},
        {"name": firm_name, "role": "entrepreneur"},
        {"name": "Ander Bedrijf", "role": "entrepreneur"},
    ]))
    coord, inst, firm, other = (Client(stack, o["api_key"]) for o in created)
    firm_id, other_id = created[2]["organisation_id"], created[3]["organisation_id"]
    def replicated(client: Client) -> bool:
        return (call(stack.url("scheduling"), client.key, "GET", "/notices")[0] == 200
                and call(stack.url("matching"), client.key, "GET", "/matches")[0] == 200)

    for client in (coord, inst, firm, other):
        wait_for("keys replicated", functools.partial(replicated, client))

    ws = coord("intake", "POST", "/workspaces", {"name": "Privacy", "municipalities": MUNICIPALITIES,
                                                 "periods": PERIODS}, expect=201)
    # the campus comes from the institution's registered campuses: the institution's word, not the team's
    inst("intake", "PATCH", "/institution", {"campuses": [{"name": "Campus Zwolle",
                                                           "municipality": MUNICIPALITIES[0]}]},
         headers={"If-Match": etag(stack.url("intake"), inst.key, "/institution")})
    team = inst("intake", "POST", "/teams", {
        "workspace_id": ws["id"], "code": team_code, "level": "HBO", "size": 4, "campus": "Campus Zwolle",
        "skills": ["website", team_skill, firm_skill], "period": PERIOD}, expect=201,
        headers={"Idempotency-Key": f"team-{m}"})
    firm("intake", "POST", "/firm", {"kvk_number": kvk, "sector": "mkb", "size_class": "micro",
                                     "municipality": MUNICIPALITIES[1], "language": "nl"}, expect=201)
    firm("scheduling", "PUT", "/contact", {"email": email, "language": "nl"})
    firm("scheduling", "PUT", "/availability", {"windows": [{"weekday": 1, "start": "09:00", "end": "17:00"}],
                                                "venue": "on_site", "address": address})
    other("scheduling", "PUT", "/contact", {"email": "ander@example.org", "language": "nl"})
    assignment = firm("intake", "POST", "/assignments", {
        "workspace_id": ws["id"], "title": title, "description": description, "period": PERIOD,
        "accepted_levels": ["HBO"], "required_skills": ["website", firm_skill], "nice_to_have_skills": [wished_skill],
        "min_teams": 1, "max_teams": 1}, expect=201, headers={"Idempotency-Key": f"assignment-{m}"})
    batch = coord("intake", "POST", "/batches", {"workspace_id": ws["id"], "period": PERIOD,
                                                 "assignment_ids": [assignment["id"]]}, expect=201,
                  headers={"Idempotency-Key": f"batch-{m}"})
    wait_for("batch matched", lambda: coord("intake", "GET", f"/batches/{batch['id']}")["status"] == "matched")
    wait_for("notice sent", lambda: [n for n in firm("scheduling", "GET", "/notices") if n["status"] == "sent"])

    def rerun() -> dict[str, Any]:
        run_id = coord("matching", "POST", f"/batches/{batch['id']}/runs", {"auto_publish": False}, expect=202)["id"]
        return dict(wait_for("re-run solved", lambda: (r := coord("matching", "GET", f"/runs/{run_id}"))[
            "status"] == "solved" and r, timeout=90))

    first_rerun = rerun()
    explained = coord("matching", "GET", f"/runs/{first_rerun['id']}/explanations")

    urls = database_urls(stack)

    def found(texts: dict[str, str]) -> list[tuple[str, str]]:
        return [(table, marker) for table, text in texts.items() for marker in markers if marker in text]

    before = {s: found(database_texts(urls[s])) for s in SERVICES}
    assert {t for t, _ in before["intake"]} >= {"teams", "organisations", "assignments", "idempotency_keys",
                                                 "outbox"}
    assert {t for t, _ in before["matching"]} >= {"batches", "runs"}
    assert {t for t, _ in before["scheduling"]} >= {"contacts", "firm_availabilities"}
    assert team_skill in json.dumps(explained), "the explanations copy the team's skills"

    # another organisation's subject answers 404, like a missing one, and is logged as a denied attempt
    firm("intake", "POST", "/privacy/erasures", {"subject_kind": "team", "subject_id": team["id"]}, expect=404)
    other("intake", "POST", "/privacy/erasures", {"subject_kind": "firm_contact", "subject_id": firm_id},
          expect=404)
    inst("intake", "POST", "/privacy/erasures", {"subject_kind": "team", "subject_id": "x", "name": "x"}, expect=422)

    erased_team = inst("intake", "POST", "/privacy/erasures", {"subject_kind": "team", "subject_id": team["id"]},
                       expect=201)
    erased_firm = firm("intake", "POST", "/privacy/erasures", {"subject_kind": "firm_contact",
                                                               "subject_id": firm_id}, expect=201)
    assert erased_team["placeholder"] == f"erased-{team['id'][:8]}"
    kept = inst("intake", "GET", f"/teams/{team['id']}")
    assert (kept["code"], kept["skills"], kept["campus"]) == (erased_team["placeholder"], ["website"], "Campus Zwolle")
    assert erased_firm["placeholder"] == f"erased-{firm_id[:8]}"
    batch_after = coord("intake", "GET", f"/batches/{batch['id']}")
    assert [(a["title"], a["required_skills"], a["nice_to_have_skills"]) for a in batch_after["assignments"]] == [
        ("[erased]", ["website"], [])]

    def erasures_recorded(service: str) -> list[Any]:
        return select(urls[service], ERASURES)

    for service in ("matching", "scheduling"):
        wait_for(f"{service} applied both erasures",
                 functools.partial(lambda s: len(erasures_recorded(s)) == 2, service), timeout=60)
    wait_for("intake outbox relayed", lambda: not select(urls["intake"], "SELECT 1 FROM outbox WHERE sent_at IS NULL"),
             timeout=30)

    # a re-run after the erasure works from the scrubbed snapshot: the erased team (vocabulary skills only)
    # is matched again, and nothing erased is copied back
    second_rerun = rerun()
    assert [(m_["team_id"], m_["assignment_id"]) for m_ in coord(
        "matching", "GET", f"/runs/{second_rerun['id']}/explanations")["matches"]] == [(team["id"], assignment["id"])]

    # the audit trail: who asked, which subject, when; in every service
    intake_log = erasures_recorded("intake")
    assert [(r.subject_type, r.subject_id, r.actor_organisation_id) for r in intake_log] == [
        ("team", team["id"], created[1]["organisation_id"]), ("firm_contact", firm_id, firm_id)]
    for service in ("matching", "scheduling"):
        assert [(r.subject_type, r.subject_id) for r in erasures_recorded(service)] == [
            ("team", team["id"]), ("firm_contact", firm_id)]
        assert all(r.message_id for r in erasures_recorded(service))
    assert firm("intake", "GET", "/privacy/erasures") == [
        {"subject_kind": "firm_contact", "subject_id": firm_id, "erased_at": erased_firm["erased_at"]}]

    # nothing left: databases (outbox, inbox, snapshots, explanations included), queues, logs, files
    for service in SERVICES:
        assert found(database_texts(urls[service])) == [], service
    assert [t for t in queued_texts(stack, stack.config.namespace) if any(mk in t for mk in markers)] == []
    for service in SERVICES:
        log_text = Path(stack.data_dir, f"{service}.log").read_text(encoding="utf-8")
        assert log_text, service
        assert [mk for mk in markers if mk in log_text] == [], service
    if on_sqlite:
        files = sqlite_bytes(stack)
        assert {f"{s}.sqlite3" for s in SERVICES} <= set(files)
        assert [(name, mk) for name, raw in files.items() for mk in markers if mk.encode() in raw] == []

    # the other firm keeps its contact; the erased firm has none any more, its notices stay (ids only)
    assert other("scheduling", "GET", "/contact")["email"] == "ander@example.org"
    firm("scheduling", "GET", "/contact", expect=404)
    assert len(firm("scheduling", "GET", "/notices")) == 1
    denied = select(urls["intake"], DENIED)
    assert (firm_id, "/privacy/erasures", 404) in [tuple(r) for r in denied]
    assert (other_id, "/privacy/erasures", 404) in [tuple(r) for r in denied]
