"""Notices of a national round (issue 20, item 5, measured by ``benchmarks.pipeline``): a send pass over notices of
several national batches names each match from its own batch's announcement (read once a pass, not once a mail:
a national batch's names are megabytes of JSON), and scheduling's loops that find nothing to do never wait for
the write lock another transaction holds (on SQLite they did, up to the 30 s busy timeout, and then failed with
"database is locked")."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from scheduling import bootstrap as scheduling_bootstrap
from scheduling.adapters import orm
from scheduling.adapters.links import ResponseLinks
from scheduling.adapters.mailer import SmtpMailer
from scheduling.entrypoints.api import create_scheduling_app
from scheduling.service_layer import services
from werkplaats_shared.config import Settings
from werkplaats_shared.contracts import make_envelope

from .scheduling_names import announce, code_of, title_of
from .test_matching_scheduling_api import SECRET_KEY, Service
from .test_scheduling_notice_throughput import _Inbox, _serve

LINKS = ResponseLinks(SECRET_KEY, "http://x")
FIRMS_A_BATCH = 40
OTHERS = 3_000  # assignments and teams a batch announces beyond the ones matched (a national batch names all)


def _run(batch_id: str, firms: list[str], others: int) -> dict[str, Any]:
    """A ``matches.published`` payload for ``firms``, and the announcement of its batch with ``others`` more
    assignments and teams than it matched."""
    matches = [{"match_id": str(uuid.uuid4()), "assignment_id": str(uuid.uuid4()), "team_id": str(uuid.uuid4()),
                "firm_id": firm, "institution_id": "inst", "score": 0.5} for firm in firms]
    return {"run_id": str(uuid.uuid4()), "batch_id": batch_id, "workspace_id": "ws-national",
            "coordinator_id": "coord-1", "period": "2031-Q1", "unmatched_assignment_ids": [], "matches": matches,
            "_unmatched": [{"match_id": "-", "assignment_id": str(uuid.uuid4()), "team_id": str(uuid.uuid4()),
                            "firm_id": "firm-elsewhere", "institution_id": "inst", "score": 0.0}
                           for _ in range(others)]}


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Service]:
    settings = Settings.from_env("scheduling", {
        "WERKPLAATS_DATABASE_URL": f"sqlite:///{tmp_path}/scheduling.sqlite3", "WERKPLAATS_DATA_DIR": str(tmp_path),
        "WERKPLAATS_SECRET_KEY": SECRET_KEY})
    infra = scheduling_bootstrap.bootstrap(settings)
    app = create_scheduling_app(infra)
    service = Service(infra, app, app.test_client(), [])
    service.add_key("coordinator", "coord-1", "coordinator")
    yield service
    infra.engine.dispose()


def _publish(svc: Service, runs: list[dict[str, Any]]) -> None:
    for p in runs:
        with svc.infra.session_factory.begin() as session:
            # the batch names every assignment and team of the round, not only the matched ones
            announce(session, {**p, "matches": p["matches"] + p["_unmatched"]})
        payload = {k: v for k, v in p.items() if k != "_unmatched"}
        svc.handle(services.on_matches_published, make_envelope("matches.published", 1, payload))


def test_one_pass_over_national_batches_names_every_match_from_its_own_batch(svc: Service) -> None:
    firms = [f"firm-{i}" for i in range(2 * FIRMS_A_BATCH)]
    for firm in firms:
        svc.add_key(firm, firm, "entrepreneur")
        assert svc.put(firm, "/contact", {"email": f"planning@{firm}.nl", "language": "nl"}).status_code == 200
    # the firms of the two batches take turns in the pass (notices in the order they were made: interleave them)
    runs = [_run(str(uuid.uuid4()), firms[:FIRMS_A_BATCH], OTHERS), _run(str(uuid.uuid4()), firms[FIRMS_A_BATCH:],
                                                                          OTHERS)]
    _publish(svc, runs)
    match_of = {m["firm_id"]: m for p in runs for m in p["matches"]}
    with _serve(_Inbox()) as (port, inbox):
        mailer = SmtpMailer("127.0.0.1", port, "w@x.test", per_connection=100)
        sent = services.send_pending(svc.infra.session_factory, mailer, LINKS, limit=500, concurrency=2)
        assert sent == len(firms)
        assert services.send_pending(svc.infra.session_factory, mailer, LINKS, limit=500) == 0
    with svc.infra.session_factory() as session:
        notices = {n.id: n for n in session.execute(sa.select(orm.Notice)).scalars()}
        attempts = Counter(d.notice_id for d in session.execute(sa.select(orm.Delivery)).scalars())
    assert {n.status for n in notices.values()} == {"sent"} and attempts == Counter({n: 1 for n in notices})
    assert Counter(m["Message-ID"] for m in inbox.messages) == {f"<{n}@werkplaats>": 1 for n in notices}
    for message in inbox.messages:
        notice = notices[message["Message-ID"].strip("<>").split("@")[0]]
        match = match_of[notice.firm_id]
        assert message["To"] == f"planning@{notice.firm_id}.nl"
        part = message.get_body(preferencelist=("plain",))
        assert part is not None
        text = part.get_content()
        # its own assignment and team, by the names its own batch announced
        assert title_of(match["assignment_id"]) in text and code_of(match["team_id"]) in text
        others = [m for m in match_of.values() if m is not match]
        assert not any(title_of(m["assignment_id"]) in text for m in others)


def _finishes(work: Callable[[], int], seconds: float) -> tuple[bool, list[int]]:
    out: list[int] = []
    thread = threading.Thread(target=lambda: out.append(work()), daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive(), out


def test_loops_with_nothing_to_do_never_wait_for_a_writer(svc: Service) -> None:
    """SQLite has one writer; the busy timeout is 30 s. A send pass holds the write lock while it composes and
    records its attempts; the webhook, answer-deadline and send loops must not queue behind it only to find
    nothing due."""
    _publish(svc, [_run(str(uuid.uuid4()), ["firm-1"], 10)])
    with svc.infra.session_factory.begin() as session:  # sent, no webhook, deadline not passed: nothing due
        session.execute(sa.update(orm.Notice).values(status="sent", sent_at=sa.func.current_timestamp()))
    sf = svc.infra.session_factory
    with _serve(_Inbox()) as (port, _inbox):
        mailer = SmtpMailer("127.0.0.1", port, "w@x.test")
        with sf.begin() as holder:  # another transaction writing, not yet committed
            holder.execute(sa.update(orm.Notice).values(last_error=None))
            for name, work in [("send", lambda: services.send_pending(sf, mailer, LINKS)),
                               ("webhooks", lambda: services.deliver_webhooks(sf, _NoPosts(), LINKS)),
                               ("deadlines", lambda: services.expire_unanswered(sf))]:
                finished, result = _finishes(work, 10.0)
                assert finished and result == [0], name


class _NoPosts:
    """A webhook sender for a loop that has nothing to deliver: a POST would be a failure of the test."""

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Any:
        raise AssertionError(f"no webhook is due, yet one was posted to {url}")
