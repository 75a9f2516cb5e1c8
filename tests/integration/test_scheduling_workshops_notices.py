"""Workshop seat notices go out through scheduling's one notice sender, in the firm's language."""
from __future__ import annotations

from aiosmtpd.controller import Controller
from scheduling.adapters.links import ResponseLinks
from scheduling.adapters.mailer import SmtpMailer
from scheduling.service_layer import services

from tests.conftest import free_port
from tests.integration.test_matching_scheduling_api import SECRET_KEY, Service
from tests.integration.test_scheduling_responses import _Collector
from tests.integration.test_scheduling_workshops import CONTACTS, planned, post, registrations, svc  # noqa: F401


def test_workshop_notices_go_out_through_the_notice_sender(svc: Service) -> None:  # noqa: F811
    planned(svc)
    [seat] = registrations(svc, "firm_1")
    post(svc, "firm_1", f"/workshop-registrations/{seat['id']}/cancel")
    collector, port = _Collector(), free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        sent = services.send_pending(svc.infra.session_factory, SmtpMailer("127.0.0.1", port, "w@w.test"),
                                     ResponseLinks(SECRET_KEY, "http://x"))
    finally:
        controller.stop()
    assert sent == 2  # firm_1's first seat (nl) and firm_5's promotion (en); the others have no contact
    got = {m["To"]: (m["Subject"], m["Content-Language"]) for m in collector.messages}
    assert got == {CONTACTS["firm_1"]["email"]: ("Uw plaats in de workshop Kunstmatige intelligentie (AI)", "nl"),
                   CONTACTS["firm_5"]["email"]: ("A seat has become free: workshop Artificial intelligence (AI)",
                                                 "en")}
    assert {n["status"] for n in svc.get("firm_2", "/notices").get_json()} == {"no_contact"}
