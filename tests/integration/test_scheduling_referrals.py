"""A firm that no workspace serves is told so by e-mail, in its language, with the schemes that can help."""

from __future__ import annotations

import uuid

from scheduling.service_layer import services
from werkplaats_shared.contracts import make_envelope

from . import test_scheduling_responses
from .test_scheduling_responses import Firms, _Collector, _send_all

firms = test_scheduling_responses.firms
smtp = test_scheduling_responses.smtp

SCHEMES = [{"code": "loket", "label_nl": "Landelijk loket (voorbeeld)", "label_en": "National desk (example)",
            "url": "https://example.org/loket"}]


def _refer(f: Firms, firm: str, schemes: list[dict[str, str]]) -> str:
    referral_id = str(uuid.uuid4())
    f.svc.handle(services.on_firm_referred, make_envelope("firm.referred", 1, {
        "referral_id": referral_id, "firm_id": f.org[firm], "assignment_id": str(uuid.uuid4()),
        "from_workspace_id": str(uuid.uuid4()), "coordinator_id": f.org["coord"],
        "scheme_codes": [s["code"] for s in schemes], "schemes": schemes, "reason": "outside_working_area"}))
    return referral_id


def test_referred_firms_get_a_notice_in_their_language_with_the_schemes(
        firms: Firms, smtp: tuple[int, _Collector]) -> None:
    port, collector = smtp
    _refer(firms, "firm_en", SCHEMES)
    _refer(firms, "firm_nl", [])
    assert _send_all(firms, port) == 4  # two referral notices and the fixture's two match notices
    referrals = [m for m in collector.messages if "schemes" in m["Subject"] or "regelingen" in m["Subject"]]
    by_language = {m["Content-Language"]: m.get_body(preferencelist=("plain",)) for m in referrals}
    assert set(by_language) == {"nl", "en"}
    english = by_language["en"].get_content()  # type: ignore[union-attr]
    assert "National desk (example): https://example.org/loket" in english
    assert "get back to you" not in english
    dutch = by_language["nl"].get_content()  # type: ignore[union-attr]
    assert "geen Digitale Werkplaats actief" in dutch and "nemen daarna contact met u op" in dutch
    notices = firms.svc.get("firm_en", "/notices").get_json()
    assert {n["kind"] for n in notices} == {"match_notice", "referral_notice"}
    assert all(n["status"] == "sent" for n in notices)
    coordinator_kinds = [n["kind"] for n in firms.svc.get("coord", "/notices").get_json()]
    assert coordinator_kinds.count("referral_notice") == 2
