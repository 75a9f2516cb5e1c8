"""The tests' demo data set (one invented workspace, twelve firms, thirteen teams) and its end-to-end batch,
driven through the services' real HTTP APIs; with the helpers the run command's demo (story.py) shares."""

from __future__ import annotations

import json
import re
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable

from ..tracing import trace_id_of
from .smtp_sink import read_mails
from .stack import LocalStack

# Working area of the demo workspace: CBS municipality codes (Zwolle and surroundings).
MUNICIPALITIES = ["GM0148", "GM0160", "GM0166", "GM0180", "GM0193", "GM1896"]
PERIODS = [{"code": "2027-S1", "starts_on": "2027-02-01", "ends_on": "2027-06-30"}]
PERIOD = "2027-S1"

INSTITUTIONS = [
    ("Demo MBO College", "MBO", [["webshop", "website"], ["website"], ["online-marketing", "website"],
                                 ["webshop"], ["cyber-security"]]),
    ("Demo Hogeschool", "HBO", [["data", "automation"], ["online-marketing", "ai"], ["website", "ux"],
                                ["cyber-security", "data"], ["webshop", "online-marketing"]]),
    ("Demo Universiteit", "WO", [["ai", "data"], ["digital-roadmap", "data"], ["cyber-security", "ai"]]),
]

FIRMS = [
    ("Bakkerij De Korenbloem", "nl", "Webshop voor taarten", ["MBO", "HBO"], ["webshop"], ["online-marketing"]),
    ("Fietsenmaker Van Dijk", "nl", "Nieuwe website", ["MBO"], ["website"], ["ux"]),
    ("Installatiebedrijf Hendriks", "nl", "Cyber-security quick scan", ["MBO", "HBO"], ["cyber-security"], []),
    ("Kapsalon Bloem", "en", "Online bookings and marketing", ["MBO", "HBO"], ["online-marketing"], ["website"]),
    ("Transport Zwolle BV", "nl", "Dashboard ritplanning", ["HBO", "WO"], ["data"], ["automation"]),
    ("Tuincentrum Groen", "nl", "Webshop koppelen aan voorraad", ["HBO"], ["webshop"], ["data"]),
    ("Accountantskantoor Smit", "en", "AI for bookkeeping", ["HBO", "WO"], ["ai"], ["data"]),
    ("Metaalbewerking Kampen", "nl", "Digitale roadmap", ["WO"], ["digital-roadmap"], ["data"]),
    ("Hotel De Vecht", "nl", "Website vernieuwen", ["MBO", "HBO"], ["website"], ["ux", "online-marketing"]),
    ("Drukkerij Staphorst", "nl", "Beveiliging klantportaal", ["HBO", "WO"], ["cyber-security"], ["ai"]),
    ("Boerderijwinkel Dalfsen", "nl", "Social media campagne", ["MBO"], ["online-marketing"], []),
    ("Zorgcentrum Hardenberg", "en", "Data quality scan", ["WO"], ["data", "ai"], []),
]


class ApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status, self.body = status, body


@dataclass
class Api:
    base: str
    key: str
    # the trace id of the last answer (its ``traceresponse`` header): the trace the request started
    last_trace_id: str | None = field(default=None, compare=False)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method, headers={  # noqa: S310
            "Authorization": f"Bearer {self.key}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - http URL of a local service
                self.last_trace_id = trace_id_of(resp.headers.get("traceresponse"))
                return json.load(resp)
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, json.load(exc)) from None

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def post(self, path: str, body: Any) -> Any:
        return self.call("POST", path, body)

    def put(self, path: str, body: Any) -> Any:
        return self.call("PUT", path, body)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120.0, interval: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except ApiError as exc:
            if exc.status not in (401, 404):
                raise
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(interval)


@dataclass(frozen=True)
class SignIn:
    role: str
    organisation: str
    email: str
    password: str


@dataclass
class DemoResult:
    keys: dict[str, str]
    batch: dict[str, Any]
    run: dict[str, Any]
    notices: list[dict[str, Any]]
    team_codes: dict[str, str]
    mails: int
    seconds: float
    sign_ins: list[SignIn] = field(default_factory=list)


@dataclass
class DemoData:
    keys: dict[str, str]
    coordinator_key: str
    institution_keys: list[str]
    firm_keys: list[str]
    workspace_id: str
    assignment_ids: list[str]


def setup_demo_data(stack: LocalStack, say: Callable[[str], None] = print) -> DemoData:
    """Organisations and keys (intake's admin command), then workspace, teams, contacts and
    assignments through the real HTTP APIs."""
    say("creating demo organisations and their API keys")
    wanted: list[dict[str, Any]] = [{"name": "Werkplaats Regio IJssel", "role": "coordinator"}]
    wanted += [{"name": name, "role": "institution", "levels": [level]} for name, level, _ in INSTITUTIONS]
    wanted += [{"name": firm[0], "role": "entrepreneur"} for firm in FIRMS]
    created = stack.admin("create-organisations", stdin=json.dumps(wanted))
    keys = {f"{o['name']} ({o['role']})": o["api_key"] for o in created}
    coord_key = created[0]["api_key"]
    inst_keys = [o["api_key"] for o in created[1:1 + len(INSTITUTIONS)]]
    firm_keys = [o["api_key"] for o in created[1 + len(INSTITUTIONS):]]

    intake = Api(stack.url("intake"), coord_key)
    say("waiting until matching and scheduling know the new keys (apikey.issued events)")
    wait_for("keys in matching", lambda: Api(stack.url("matching"), coord_key).get("/runs") is not None)
    for key in firm_keys:
        firm_api = Api(stack.url("scheduling"), key)
        wait_for("keys in scheduling", lambda api=firm_api: api.get("/notices") is not None)  # type: ignore[misc]

    workspace = intake.post("/workspaces", {"name": "Werkplaats Regio IJssel", "municipalities": MUNICIPALITIES,
                                            "periods": PERIODS})
    say(f"workspace {workspace['id']} with {len(MUNICIPALITIES)} municipalities")
    n_teams = 0
    for (_name, level, team_skills), key in zip(INSTITUTIONS, inst_keys, strict=True):
        api = Api(stack.url("intake"), key)
        for i, skills in enumerate(team_skills, start=1):
            api.post("/teams", {"workspace_id": workspace["id"], "code": f"{level}-{i:02d}", "level": level,
                                "size": 4, "skills": skills, "period": PERIOD})
            n_teams += 1
    say(f"{n_teams} teams registered by {len(INSTITUTIONS)} institutions")
    assignment_ids = []
    for i, ((_, lang, title, levels, required, nice), key) in enumerate(zip(FIRMS, firm_keys, strict=True), 1):
        Api(stack.url("intake"), key).post("/firm", {
            "kvk_number": f"900000{i:02d}", "sector": "mkb", "size_class": "micro",
            "municipality": MUNICIPALITIES[i % len(MUNICIPALITIES)], "language": lang})
        Api(stack.url("scheduling"), key).put("/contact", {"email": f"demo-firm-{i:02d}@example.org",
                                                           "language": lang})
        a = Api(stack.url("intake"), key).post("/assignments", {
            "workspace_id": workspace["id"], "title": title, "period": PERIOD, "accepted_levels": levels,
            "required_skills": required, "nice_to_have_skills": nice, "min_teams": 1, "max_teams": 1})
        assignment_ids.append(a["id"])
    say(f"{len(assignment_ids)} assignments submitted by {len(FIRMS)} firms")
    return DemoData(keys, coord_key, inst_keys, firm_keys, workspace["id"], assignment_ids)


def submit_batch(stack: LocalStack, data: DemoData) -> dict[str, Any]:
    batch: dict[str, Any] = Api(stack.url("intake"), data.coordinator_key).post(
        "/batches", {"workspace_id": data.workspace_id, "period": PERIOD, "assignment_ids": data.assignment_ids})
    return batch


def wait_for_results(stack: LocalStack, data: DemoData, batch_id: str, timeout: float = 120.0) -> DemoResult:
    intake = Api(stack.url("intake"), data.coordinator_key)
    matching = Api(stack.url("matching"), data.coordinator_key)
    scheduling = Api(stack.url("scheduling"), data.coordinator_key)
    batch = wait_for("batch matched", lambda: (b := intake.get(f"/batches/{batch_id}"))["status"] == "matched"
                     and b, timeout=timeout)
    run = matching.get(f"/runs/{batch['run_id']}")
    matched = {m["assignment_id"] for m in batch["matches"]}
    expected = len({a["firm_id"] for a in batch["assignments"] if a["id"] in matched})
    notices = wait_for("notices sent", lambda: (
        n if len(n := scheduling.get("/notices?page_size=100")) == expected
        and all(x["status"] == "sent" for x in n) else None), timeout=timeout)
    mails = wait_for("mails in the SMTP sink", lambda: len(m) if len(m := read_mails(stack.maildir)) >= expected
                     else None, timeout=timeout)
    team_codes = {t["id"]: t["code"] for t in intake.get("/teams?page_size=100")}
    return DemoResult(data.keys, batch, run, notices, team_codes, mails, 0.0)


INVITATION_LINK = re.compile(r"https?://\S+/invitations/(?P<token>[A-Za-z0-9_\-.]+)")


def invite_person(stack: LocalStack, key: str, email: str, language: str = "nl") -> str:
    """Invite a person to the organisation of ``key`` and accept the e-mailed invitation with a new password,
    as the person would in the portal; answers the password."""
    Api(stack.url("intake"), key).post("/invitations", {"email": email, "language": language})

    def invitation_token() -> str | None:
        # every mail to this address (a Maildir's order is not the order of arrival): one invitation per person
        for mail in read_mails(stack.maildir):
            if mail["To"] != email:
                continue
            body = mail.get_payload(decode=True) if not mail.is_multipart() else \
                mail.get_payload(0).get_payload(decode=True)  # type: ignore[union-attr]
            found = INVITATION_LINK.search(bytes(body or b"").decode("utf-8", "replace"))
            if found:
                return found["token"]
        return None

    token = wait_for("the invitation mail", invitation_token, timeout=30)
    password = secrets.token_urlsafe(12)
    accepted = urllib.request.Request(  # noqa: S310 - http URL of a local service
        f"{stack.url('intake')}/invitations/{token}/accept", method="POST",
        data=json.dumps({"password": password}).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(accepted, timeout=30):  # noqa: S310
        pass
    return password


def invite_demo_people(stack: LocalStack, data: DemoData, say: Callable[[str], None] = print) -> list[SignIn]:
    """One person per role with an account to sign in to the portal: the coordinator, the first institution
    and the first firm of the demo."""
    wanted = [("coordinator", "Werkplaats Regio IJssel", data.coordinator_key, "coordinator@demo.example.org"),
              ("institution", INSTITUTIONS[0][0], data.institution_keys[0], "plaatsing@demo-mbo.example.org"),
              ("entrepreneur", FIRMS[0][0], data.firm_keys[0], "eigenaar@korenbloem.example.org")]
    people = [SignIn(role, name, email, invite_person(stack, key, email)) for role, name, key, email in wanted]
    say(f"{len(people)} people invited to the portal (coordinator, institution, entrepreneur)")
    return people


def load_and_run(stack: LocalStack, say: Callable[[str], None] = print) -> DemoResult:
    started = time.monotonic()
    data = setup_demo_data(stack, say)
    batch = submit_batch(stack, data)
    say(f"batch {batch['id']} submitted; waiting for matching and scheduling")
    result = wait_for_results(stack, data, batch["id"])
    if stack.config.portal:
        result.sign_ins = invite_demo_people(stack, data, say)
    result.seconds = time.monotonic() - started
    return result


def report(result: DemoResult, stack: LocalStack, say: Callable[[str], None] = print) -> None:
    titles = {a["id"]: a["title"] for a in result.batch["assignments"]}
    say("")
    say(f"Run {result.run['id']}: {result.run['solver_status']} with {result.run['solver_version']}, "
        f"objective {result.run['objective']}")
    say(f"Matches ({len(result.batch['matches'])} of {len(result.batch['assignments'])} assignments):")
    for m in result.batch["matches"]:
        team = result.team_codes.get(m["team_id"], m["team_id"])
        say(f"  {titles[m['assignment_id']]:<35} <- team {team:<8} fit {m['score']}")
    unmatched = [a["title"] for a in result.batch["assignments"] if a["status"] == "unmatched"]
    if unmatched:
        say(f"Unmatched: {', '.join(unmatched)}")
    say(f"Notices sent: {sum(n['status'] == 'sent' for n in result.notices)} "
        f"({', '.join(sorted({n['language'] for n in result.notices}))}); "
        f"mails in {stack.maildir}: {result.mails}")
    say(f"Demo batch took {result.seconds:.1f} s end to end.")
