"""Scheduling's side of privacy: a firm contact's erasure (from intake's event) deletes the address and the names,
webhook and availability and scrubs delivery errors, leaving notices as ids; delivery attempts expire on a
fixed clock; reads of contacts and notices and refused attempts land in the append-only access log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import sqlalchemy as sa
from scheduling.adapters import orm
from scheduling.adapters.privacy_orm import access_log
from scheduling.service_layer import privacy, services
from werkplaats_shared.audit import entries
from werkplaats_shared.contracts import make_envelope
from werkplaats_shared.retention import RetentionPeriods

from . import test_scheduling_responses
from .test_scheduling_responses import CODES, CONTACTS, TITLES, Firms, _Collector, _send_all

firms, smtp = test_scheduling_responses.firms, test_scheduling_responses.smtp


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _erase(f: Firms, kind: str, subject_id: str) -> str:
    envelope = make_envelope("personal_data.erased", 1, {"subject_kind": kind, "subject_id": subject_id,
                                                         "erased_at": datetime.now(UTC).isoformat()})
    f.svc.handle(privacy.on_personal_data_erased, envelope)
    return envelope.message_id


def _add_delivery(f: Firms, firm: str, at: datetime, error: str | None) -> None:
    with f.svc.infra.session_factory.begin() as session:
        notice_id = session.execute(sa.select(orm.Notice.id).where(orm.Notice.firm_id == f.org[firm])).scalar_one()
        session.add(orm.Delivery(notice_id=notice_id, channel="email", attempt=1, error=error, attempted_at=at))


def test_erasing_a_firm_contact_removes_its_address_and_keeps_the_other_firm(firms: Firms) -> None:
    f = firms
    availability = {"windows": [{"weekday": 2, "start": "09:00", "end": "12:00"}], "venue": "on_site",
                    "address": "Thuisstraat 9, Zwolle"}
    assert f.svc.put("firm_nl", "/availability", availability).status_code == 200
    address = CONTACTS["firm_nl"]["email"]
    _add_delivery(f, "firm_nl", datetime.now(UTC), f"550 <{address}> mailbox unavailable")
    message_id = _erase(f, "firm_contact", f.org["firm_nl"])
    assert f.svc.get("firm_nl", "/contact").status_code == 404
    assert f.svc.get("firm_nl", "/availability").status_code == 404
    assert f.svc.get("firm_en", "/contact").get_json()["email"] == CONTACTS["firm_en"]["email"]
    assert len(f.svc.get("firm_nl", "/notices").get_json()) == 1  # ids only: kept
    with f.svc.infra.engine.connect() as conn:
        texts = "\n".join(repr(tuple(r)) for t in (orm.Delivery.__table__, orm.Notice.__table__,
                                                   orm.FirmAvailability.__table__, access_log)
                          for r in conn.execute(sa.select(t)))
    assert address not in texts and "Thuisstraat" not in texts
    # the names intake announced of the firm's assignments go too (a sole trader's firm bears a person's name);
    # the other firm's stay
    with f.svc.infra.engine.connect() as conn:
        facts = repr(conn.execute(sa.select(orm.KnownBatch.facts)).scalars().all())
    assert "Bakkerij Jansen" not in facts and TITLES["a1"] not in facts and TITLES["a2"] not in facts
    assert "Kapsalon Bloem" in facts and TITLES["a3"] in facts
    erased = [e for e in entries(f.svc.infra.engine, access_log) if e["action"] == "erase"]
    assert [(e["subject_type"], e["subject_id"], e["message_id"]) for e in erased] == [
        ("firm_contact", f.org["firm_nl"], message_id)]
    _erase(f, "team", f.ids["t1"])  # the team's code and skills, as intake announced them, go too
    with f.svc.infra.engine.connect() as conn:
        facts = repr(conn.execute(sa.select(orm.KnownBatch.facts)).scalars().all())
    assert CODES["t1"] not in facts and CODES["t2"] in facts
    assert [e["subject_type"] for e in entries(f.svc.infra.engine, access_log) if e["action"] == "erase"] == [
        "firm_contact", "team"]


def _page(f: Firms, match: str) -> str:
    """The accept/decline page of one of the fixture's matches, as its mailed link opens it."""
    with f.svc.infra.session_factory() as session:
        [notice_id] = [n.id for n in session.execute(sa.select(orm.Notice)).scalars()
                       if any(m["match_id"] == f.ids[match] for m in n.matches)]
    response = f.svc.client.get("/responses/" + f.links.issue(notice_id, f.ids[match]))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def _text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(message["Subject"]) + str(body.get_content())


def test_names_kept_decoded_in_memory_are_not_served_once_an_erasure_is_committed(
        firms: Firms, smtp: tuple[int, _Collector]) -> None:
    f, (port, inbox) = firms, smtp
    # the pages of both firms' matches name the assignments and teams; the batch's names are decoded once and
    # served from memory while its row stays the same
    assert TITLES["a1"] in _page(f, "m1") and CODES["t1"] in _page(f, "m1")
    decoded = services.DECODED_FACTS.decoded
    assert TITLES["a3"] in _page(f, "m3") and CODES["t3"] in _page(f, "m3")
    assert services.DECODED_FACTS.decoded == decoded
    assert f.ids["batch"] in services.DECODED_FACTS
    _erase(f, "firm_contact", f.org["firm_nl"])
    assert f.ids["batch"] not in services.DECODED_FACTS  # the names decoded before the erasure left memory with it
    _page(f, "m1")
    _erase(f, "team", f.ids["t3"])
    # after the erasures the page, the mail and the webhook's body name neither the firm's assignments nor the team
    nl = _page(f, "m1")
    assert TITLES["a1"] not in nl and "Bakkerij Jansen" not in nl and "uw opdracht" in nl
    en = _page(f, "m3")
    assert CODES["t3"] not in en and TITLES["a3"] in en and "a student team" in en
    assert _send_all(f, port) == 1  # firm_nl's address went with its erasure
    [mail] = inbox.messages
    assert CODES["t3"] not in _text(mail) and TITLES["a3"] in _text(mail)
    with f.svc.infra.session_factory() as session:
        notice = session.execute(sa.select(orm.Notice).where(orm.Notice.firm_id == f.org["firm_en"])).scalar_one()
        assert CODES["t3"] not in services.webhook_body(session, notice, f.links).decode()
    # a change made elsewhere (another process, a statement outside the ORM) is read at the next use as well
    other = sa.create_engine(f.svc.infra.engine.url)
    try:
        with other.begin() as conn:
            text = conn.execute(sa.select(sa.cast(orm.KnownBatch.facts, sa.Text))).scalar_one()
            conn.execute(sa.update(orm.KnownBatch).values(
                facts=sa.type_coerce(text.replace(CODES["t2"], "ROC-NET-99"), sa.Text)))
    finally:
        other.dispose()
    page = _page(f, "m2")
    assert "ROC-NET-99" in page and CODES["t2"] not in page


def test_delivery_attempts_expire_after_the_retention_period(firms: Firms) -> None:
    f = firms
    now = datetime(2028, 6, 1, tzinfo=UTC)
    _add_delivery(f, "firm_nl", now - timedelta(days=31), "timeout")
    _add_delivery(f, "firm_en", now - timedelta(days=29), "timeout")
    periods = RetentionPeriods(deliveries=timedelta(days=30))
    with f.svc.infra.session_factory.begin() as session:
        assert privacy.apply_retention(session, periods, now) == 1
    with f.svc.infra.session_factory.begin() as session:
        assert privacy.apply_retention(session, periods, now) == 0
    with f.svc.infra.engine.connect() as conn:
        left = conn.execute(sa.select(orm.Delivery.attempted_at)).scalars().all()
    assert [_as_utc(a) for a in left] == [now - timedelta(days=29)]


def test_contact_reads_and_refusals_are_audited_without_the_address(firms: Firms) -> None:
    f = firms
    f.svc.add_key("inst", f.org["inst"], "institution")
    before = len(entries(f.svc.infra.engine, access_log))
    assert f.svc.get("firm_nl", "/contact").status_code == 200
    assert f.svc.get("inst", "/contact").status_code == 403  # an institution has no contact here
    assert f.svc.get(None, "/notices").status_code == 401
    notice_id = f.svc.get("firm_nl", "/notices").get_json()[0]["id"]
    assert f.svc.get("firm_en", f"/notices/{notice_id}").status_code == 404
    new = entries(f.svc.infra.engine, access_log)[before:]
    assert [(e["action"], e["subject_type"], e["actor_organisation_id"], e["status"]) for e in new] == [
        ("read", "contact", f.org["firm_nl"], 200),
        ("denied", "contact", f.org["inst"], 403),
        ("denied", "notice", None, 401),
        ("read", "notice", f.org["firm_nl"], 200),
        ("denied", "notice", f.org["firm_en"], 404),
    ]
    assert new[-1]["subject_id"] == notice_id
    assert CONTACTS["firm_nl"]["email"] not in repr(new)
