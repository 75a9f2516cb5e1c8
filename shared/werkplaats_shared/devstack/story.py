"""The run command's demo: the programme's own case, loaded through the services' real HTTP APIs.

Two regional workspaces with their real working areas (CBS municipality codes): the Amsterdam (MRA)
workspace and the Utrecht workspace. A firm from Hilversum (Gooi & Vechtstreek, outside both areas) is
referred with the schemes that can help. The SPOT035 network, whose programme ended, hands its firms and
open assignments over to the Amsterdam workspace in one audited step. Entrepreneurs register for a themed
workshop with fewer seats than people, so one waits. A round in Amsterdam with MBO, HBO and WO teams
places a team on every assignment but one, whose reason the run's explanation states. The Amsterdam
coordinator's contact address is registered, so every mail names whom to ask; the bakery accepts its team, and
its kickoff invitation (.ics) goes out.
"""

from __future__ import annotations

import email.message
import json
import os
import shlex
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..geo import municipality
from .demo import Api, SignIn, invite_person, wait_for
from .smtp_sink import read_mails
from .stack import SERVICES, LocalStack

PERIODS = [{"code": "2027-S1", "starts_on": "2027-02-01", "ends_on": "2027-06-30"}]
PERIOD = "2027-S1"

AMSTERDAM = "Digitale Werkplaats Amsterdam (MRA)"
UTRECHT = "Digitale Werkplaats Utrecht"
SPOT035 = "SPOT035"
# Working areas: Amsterdam and the MRA municipalities around it (Weesp is part of Amsterdam since 2022);
# Utrecht and the municipalities around it. Gooi & Vechtstreek lies in neither.
AMSTERDAM_AREA = ["GM0363", "GM0362", "GM0384", "GM0437", "GM0479", "GM0392", "GM0394", "GM0439", "GM0034"]
UTRECHT_AREA = ["GM0344", "GM0356", "GM0321", "GM0355", "GM0310", "GM1904", "GM0353", "GM0312"]
# SPOT035's network: its firms in the Gooi. Hilversum is not in its area here, as a workspace whose programme
# ended cannot be closed yet: a new firm from Hilversum would otherwise still be placed with SPOT035.
SPOT035_AREA = ["GM1942", "GM0406", "GM0376", "GM0417", "GM1696"]

INSTITUTIONS = [
    ("MBO College Amsterdam", "MBO", [["webshop", "website"], ["online-marketing", "website"]]),
    ("Hogeschool Amsterdam", "HBO", [["automation", "data"], ["cyber-security", "data"]]),
    ("Universiteit Amsterdam", "WO", [["ai", "data"], ["data", "digital-roadmap"]]),
]


@dataclass(frozen=True)
class Firm:
    name: str
    municipality: str
    language: str
    title: str
    levels: tuple[str, ...]
    skills: tuple[str, ...]
    theme: str
    mode: str = "on_site"


AMSTERDAM_FIRMS = [
    Firm("Bakkerij De Korenbloem", "GM0363", "nl", "Webshop voor taarten", ("MBO", "HBO"), ("webshop",), "webshop"),
    Firm("Fietsenmaker Van Dijk", "GM0479", "nl", "Nieuwe website", ("MBO",), ("website",), "website"),
    Firm("Transport Almere BV", "GM0034", "nl", "Dashboard ritplanning", ("HBO", "WO"), ("data",),
         "data_automation"),
    Firm("Accountantskantoor Smit", "GM0362", "en", "AI for bookkeeping", ("WO",), ("ai",), "ai"),
    # no MBO team knows AI: this one stays unmatched, and the explanation says why
    Firm("Kapsalon Bloem", "GM0392", "nl", "Chatbot voor afspraken", ("MBO",), ("ai",), "ai"),
]
SPOT035_FIRMS = [
    Firm("Drukkerij Huizen", "GM0406", "nl", "Beveiliging klantportaal", ("HBO",), ("cyber-security",),
         "cyber_security", "remote"),
    Firm("Metaalbewerking Bussum", "GM1942", "nl", "Digitale roadmap", ("WO",), ("digital-roadmap",),
         "digital_roadmap", "remote"),
]  # remote work: matching keeps on-site work inside the working area, and the Gooi lies outside Amsterdam's
HILVERSUM_FIRM = Firm("Fotostudio Hilversum", "GM0402", "nl", "Webshop voor fotoprints", ("MBO",), ("webshop",),
                      "webshop")
WORKSHOP_THEME = "cyber_resilience"
WORKSHOP_SEATS = 3  # four Amsterdam firms register: one waits
WORKSHOP_SLOT = {"date": "2027-03-09", "day_part": "evening"}
COORDINATOR_CONTACT = {"email": "werkplaats@amsterdam.example.org", "language": "nl"}  # an example address
ACCEPTING_FIRM = AMSTERDAM_FIRMS[0]  # accepts its team: its kickoff invitation goes out


@dataclass
class Story:
    """What the demo loaded and what came of it, for the run command's summary."""

    keys: dict[str, str]
    workspaces: list[dict[str, Any]]
    referral: dict[str, Any]
    referral_schemes: list[str]
    handover: dict[str, Any]
    programme: dict[str, Any]
    registrations: list[dict[str, Any]]
    batch: dict[str, Any]
    run: dict[str, Any]
    unmatched: list[dict[str, Any]]
    team_codes: dict[str, str]
    notices: list[dict[str, Any]]
    mails: int
    kickoff: dict[str, Any] = field(default_factory=dict)  # the accepted match's kickoff, as the firm sees it
    seconds: float = 0.0
    sign_ins: list[SignIn] = field(default_factory=list)
    trace_id: str | None = None  # the trace of the round's batch: its submission, run, notices and their e-mails
    data_dir: str = ""  # where the services' logs are (<service>.log)


# The lines of one trace in the services' JSON logs, oldest first (any python3, no packages): time, service, message
# and the message type a consumer handled
FOLLOW_TRACE = ('import json,sys;t=sys.argv[1];r=[json.loads(l) for f in sys.argv[2:] for l in open(f) if t in l and '
                'l[0]=="{"];[print(" ".join(str(e[k]) for k in ("ts","service","msg","type") if k in e)) for e in '
                'sorted(r,key=lambda e:e["ts"]) if e.get("trace_id")==t]')


def follow_trace_command(data_dir: str, trace_id: str) -> str:
    """The shell command that prints the lines of ``trace_id`` in intake's, matching's and scheduling's logs."""
    logs = " ".join(shlex.quote(os.path.join(data_dir, f"{service}.log")) for service in SERVICES)
    return f"python3 -c {shlex.quote(FOLLOW_TRACE)} {trace_id} {logs}"


def area_names(codes: list[str]) -> list[str]:
    """The municipalities' names, as CBS writes them."""
    return sorted(found.name if (found := municipality(code)) else code for code in codes)


def load_story(stack: LocalStack, say: Callable[[str], None] = print) -> Story:
    started = time.monotonic()
    firms = [*AMSTERDAM_FIRMS, *SPOT035_FIRMS, HILVERSUM_FIRM]
    say("creating the organisations of the demo and their API keys")
    wanted: list[dict[str, Any]] = [{"name": name, "role": "coordinator"} for name in (AMSTERDAM, UTRECHT, SPOT035)]
    wanted += [{"name": name, "role": "institution", "levels": [level]} for name, level, _ in INSTITUTIONS]
    wanted += [{"name": firm.name, "role": "entrepreneur"} for firm in firms]
    created = stack.admin("create-organisations", stdin=json.dumps(wanted))
    keys = {f"{o['name']} ({o['role']})": str(o["api_key"]) for o in created}
    coordinator = {name: keys[f"{name} (coordinator)"] for name in (AMSTERDAM, UTRECHT, SPOT035)}
    firm_key = {firm.name: keys[f"{firm.name} (entrepreneur)"] for firm in firms}

    def api(service: str, key: str) -> Api:
        return Api(stack.url(service), key)

    say("waiting until matching and scheduling know the new keys (apikey.issued events)")
    wait_for("keys in matching", lambda: api("matching", coordinator[AMSTERDAM]).get("/runs") is not None)
    for key in [coordinator[AMSTERDAM], *firm_key.values()]:
        wait_for("keys in scheduling", lambda key=key: api("scheduling", key).get("/notices") is not None)  # type: ignore[misc]
    # whom firms ask: every notice of the Amsterdam workspace names the coordinator and this address
    api("scheduling", coordinator[AMSTERDAM]).put("/contact", COORDINATOR_CONTACT)

    # the operator's national list (its command line), and one scheme of the Amsterdam workspace's own
    # (invented names and example addresses: the demo names no real scheme)
    stack.admin("put-national-scheme", "loket-digitaal", "--name-nl", "Landelijk loket digitaal ondernemen",
                "--name-en", "National desk for digital business", "--url", "https://example.org/loket-digitaal")
    stack.admin("put-national-scheme", "cyber-subsidie", "--name-nl", "Subsidie cyberweerbaarheid",
                "--name-en", "Cyber resilience grant", "--url", "https://example.org/cyber-subsidie",
                "--theme", "cyber_security")
    workspaces = []
    for name, area in ((AMSTERDAM, AMSTERDAM_AREA), (UTRECHT, UTRECHT_AREA), (SPOT035, SPOT035_AREA)):
        workspaces.append(api("intake", coordinator[name]).post(
            "/workspaces", {"name": name, "municipalities": area, "periods": PERIODS}))
    amsterdam, _utrecht, spot035 = workspaces
    api("intake", coordinator[AMSTERDAM]).put(f"/workspaces/{amsterdam['id']}/referral-schemes/ondernemershuis", {
        "name_nl": "Ondernemershuis Gooi en Vechtstreek", "name_en": "Entrepreneurs' desk Gooi and Vechtstreek",
        "url": "https://example.org/ondernemershuis-gooi", "themes": ["webshop", "website", "online_marketing"]})
    say(f"workspaces: {AMSTERDAM} ({len(AMSTERDAM_AREA)} municipalities), {UTRECHT} ({len(UTRECHT_AREA)}), "
        f"{SPOT035} ({len(SPOT035_AREA)})")

    for i, firm in enumerate(firms, start=1):
        api("intake", firm_key[firm.name]).post("/firm", {
            "kvk_number": f"910000{i:02d}", "sector": "mkb", "size_class": "micro",
            "municipality": firm.municipality, "language": firm.language})
        api("scheduling", firm_key[firm.name]).put("/contact", {"email": f"demo-firm-{i:02d}@example.org",
                                                               "language": firm.language})

    def submit(firm: Firm, workspace_id: str) -> dict[str, Any]:
        found: dict[str, Any] = api("intake", firm_key[firm.name]).post("/assignments", {
            "workspace_id": workspace_id, "title": firm.title, "period": PERIOD, "accepted_levels": list(firm.levels),
            "required_skills": list(firm.skills), "min_teams": 1, "max_teams": 1, "theme": firm.theme,
            "mode": firm.mode})
        return found

    round_ids = [submit(firm, amsterdam["id"])["id"] for firm in AMSTERDAM_FIRMS]
    for firm in SPOT035_FIRMS:
        submit(firm, spot035["id"])
    referred = submit(HILVERSUM_FIRM, amsterdam["id"])
    referral = next(r for r in api("intake", coordinator[AMSTERDAM]).get("/referrals")
                    if r["assignment_id"] == referred["id"])
    schemes = {s["code"]: s["name_nl"] for s in api("intake", firm_key[HILVERSUM_FIRM.name]).get("/referral-schemes")}
    say(f"{HILVERSUM_FIRM.name} referred to {len(referral['scheme_codes'])} schemes")

    handover = api("intake", coordinator[SPOT035]).post("/handovers", {
        "from_workspace_id": spot035["id"], "to_workspace_id": amsterdam["id"],
        "reason": "Het programma van SPOT035 is afgelopen; Amsterdam neemt het netwerk over."})
    say(f"{SPOT035} handed over {len(handover['firm_ids'])} firms and {len(handover['assignment_ids'])} open "
        f"assignments to {AMSTERDAM}")

    team_codes: dict[str, str] = {}
    for (name, level, team_skills) in INSTITUTIONS:
        institution = api("intake", keys[f"{name} (institution)"])
        for i, skills in enumerate(team_skills, start=1):
            team = institution.post("/teams", {"workspace_id": amsterdam["id"], "code": f"{level}-A{i}",
                                               "level": level, "size": 4, "skills": skills, "period": PERIOD})
            team_codes[team["id"]] = team["code"]

    amsterdam_api = api("intake", coordinator[AMSTERDAM])
    batch = amsterdam_api.post("/batches", {"workspace_id": amsterdam["id"], "period": PERIOD, "policy": "max_served",
                                            "assignment_ids": [*round_ids, *handover["assignment_ids"]]})
    trace_id = amsterdam_api.last_trace_id
    say(f"round submitted in {AMSTERDAM}: {len(round_ids) + len(handover['assignment_ids'])} assignments, "
        f"{len(team_codes)} teams; waiting for matching and scheduling")

    programme, registrations = _workshop(stack, coordinator[AMSTERDAM],
                                         [firm_key[f.name] for f in AMSTERDAM_FIRMS[:WORKSHOP_SEATS + 1]])
    say(f"workshop programme planned: {WORKSHOP_SEATS} seats, {len(registrations)} registrations")

    batch = wait_for("the round matched", lambda: (b := amsterdam_api.get(f"/batches/{batch['id']}"))["status"]
                     == "matched" and b)
    matching = api("matching", coordinator[AMSTERDAM])
    run = matching.get(f"/runs/{batch['run_id']}")
    explanations = matching.get(f"/runs/{batch['run_id']}/explanations")
    scheduling = api("scheduling", coordinator[AMSTERDAM])
    firms_matched = len({a["firm_id"] for a in batch["assignments"]
                         if a["id"] in {m["assignment_id"] for m in batch["matches"]}})
    notices = wait_for("match notices sent", lambda: (
        n if len(n := [x for x in scheduling.get("/notices?page_size=100") if x["run_id"] == run["id"]])
        == firms_matched and all(x["status"] == "sent" for x in n) else None))
    mails = wait_for("mails in the SMTP sink", lambda: len(m) if len(m := read_mails(stack.maildir)) >= firms_matched
                     else None)
    kickoff = _accept_and_invite(api("scheduling", firm_key[ACCEPTING_FIRM.name]), stack.maildir)
    mails = len(read_mails(stack.maildir))
    story = Story(keys, workspaces, referral, [schemes.get(code, code) for code in referral["scheme_codes"]],
                  handover, programme, registrations, batch, run, explanations["unmatched_assignments"], team_codes,
                  notices, mails, kickoff)
    if stack.config.portal:
        story.sign_ins = _invite_people(stack, coordinator[AMSTERDAM], keys, firm_key, say)
    story.trace_id, story.data_dir = trace_id, stack.data_dir
    story.seconds = time.monotonic() - started
    return story


def kickoff_invitations(maildir: str) -> list[email.message.Message]:
    """The delivered mails that carry a kickoff invitation (.ics, METHOD:REQUEST)."""
    return [m for m in read_mails(maildir) for part in m.walk()
            if part.get_content_type() == "text/calendar" and b"UID:kickoff-" in (part.get_payload(decode=True) or b"")]


def _accept_and_invite(firm: Api, maildir: str) -> dict[str, Any]:
    """The bakery accepts its team (as in the portal); scheduling plans the kickoff and mails the invitation."""
    [match] = firm.get("/match-answers")
    firm.post(f"/match-answers/{match['match_id']}", {"decision": "accepted"})
    wait_for("the kickoff invitation mailed", lambda: kickoff_invitations(maildir) or None)
    found: dict[str, Any] = firm.get(f"/kickoffs/{match['match_id']}")
    return found


def _workshop(stack: LocalStack, coordinator_key: str, firm_keys: list[str]) -> tuple[dict[str, Any],
                                                                                      list[dict[str, Any]]]:
    """A themed workshop in Amsterdam: one evening, one room with fewer seats than entrepreneurs."""
    scheduling = Api(stack.url("scheduling"), coordinator_key)
    programme: dict[str, Any] = scheduling.post("/workshop-programmes", {
        "title": "Cyberweerbaarheid voor ondernemers", "slots": [WORKSHOP_SLOT], "min_participants": 1})
    base = f"/workshop-programmes/{programme['id']}"
    scheduling.post(f"{base}/rooms", {"municipality_code": "GM0363", "name": "Zaal Amsterdam-Noord",
                                      "capacity": WORKSHOP_SEATS, "availability": [WORKSHOP_SLOT]})
    scheduling.post(f"{base}/facilitators", {"label": "F-01", "themes": [WORKSHOP_THEME],
                                             "availability": [WORKSHOP_SLOT]})
    for key in firm_keys:
        Api(stack.url("scheduling"), key).post(f"{base}/interests", {
            "theme": WORKSHOP_THEME, "locations": ["GM0363"], "available_days": [WORKSHOP_SLOT["date"]]})
    job = scheduling.post(f"{base}/plan", {})  # a plan job: scheduling's worker plans the programme
    wait_for("the workshop programme planned",
             lambda: scheduling.get(f"/plan-jobs/{job['id']}")["status"] in ("done", "failed", "cancelled"),
             timeout=120)
    registrations: list[dict[str, Any]] = scheduling.get(
        f"/workshop-registrations?programme_id={programme['id']}&page_size=100")
    return programme, registrations


def _invite_people(stack: LocalStack, coordinator_key: str, keys: dict[str, str], firm_key: dict[str, str],
                   say: Callable[[str], None]) -> list[SignIn]:
    """One person per role, to sign in to the portal: Amsterdam's coordinator, the MBO college and the
    first Amsterdam firm."""
    first_institution = INSTITUTIONS[0][0]
    first_firm = AMSTERDAM_FIRMS[0].name
    wanted = [("coordinator", AMSTERDAM, coordinator_key, "coordinator@demo.example.org"),
              ("institution", first_institution, keys[f"{first_institution} (institution)"],
               "plaatsing@demo-mbo.example.org"),
              ("entrepreneur", first_firm, firm_key[first_firm], "eigenaar@korenbloem.example.org")]
    people = [SignIn(role, name, email, invite_person(stack, key, email)) for role, name, key, email in wanted]
    say(f"{len(people)} people invited to the portal (coordinator, institution, entrepreneur)")
    return people


def summary(story: Story) -> list[str]:
    """One line per part of the programme's case, then the round's matches."""
    amsterdam, utrecht, spot035 = story.workspaces
    seated = [r for r in story.registrations if r["status"] == "seated"]
    waiting = [r for r in story.registrations if r["status"] == "waitlisted"]
    titles = {a["id"]: a["title"] for a in story.batch["assignments"]}
    levels = sorted({code.split("-")[0] for code in story.team_codes.values()}, key=["MBO", "HBO", "WO"].index)
    lines = [
        f"Workspaces: {amsterdam['name']} ({', '.join(area_names(amsterdam['municipalities']))}); "
        f"{utrecht['name']} ({', '.join(area_names(utrecht['municipalities']))})",
        f"Referral: {HILVERSUM_FIRM.name} (Hilversum, Gooi & Vechtstreek) lies outside both working areas; "
        f"referred to {'; '.join(story.referral_schemes)}",
        f"Handover: {spot035['name']}'s network ({len(story.handover['firm_ids'])} firms, "
        f"{len(story.handover['assignment_ids'])} open assignments) moved to {amsterdam['name']} in one audited "
        f"step: \"{story.handover['reason']}\"",
        f"Workshop: \"{story.programme['title']}\", {len(story.registrations)} entrepreneurs registered, "
        f"{len(seated)} seated, {len(waiting)} on the waitlist",
        f"Round {story.batch['period']} in {amsterdam['name']} with {', '.join(levels)} teams: "
        f"{len(story.batch['matches'])} of {len(story.batch['assignments'])} assignments matched "
        f"(run {story.run['solver_status']}, objective {story.run['objective']})",
    ]
    for m in story.batch["matches"]:
        team = story.team_codes.get(m["team_id"], m["team_id"])
        lines.append(f"  {titles[m['assignment_id']]:<30} <- team {team:<7} fit {m['score']}")
    for u in story.unmatched:
        lines.append(f"Unmatched: {titles.get(u['assignment_id'], u['assignment_id'])}: {u['en']} ({u['nl']})")
    languages = ", ".join(sorted({str(n["language"]) for n in story.notices}))
    lines.append(f"Match notices sent: {sum(n['status'] == 'sent' for n in story.notices)} ({languages}); "
                 f"mails in the sink: {story.mails}")
    if story.kickoff:
        k = story.kickoff
        lines.append(f"Kickoff: {ACCEPTING_FIRM.name} accepted team {story.team_codes.get(k['team_id'], '?')} for "
                     f"\"{titles.get(k['assignment_id'], '?')}\"; the invitation proposes {k['starts_at']} "
                     f"({k['status']}); questions go to {COORDINATOR_CONTACT['email']}")
    if story.trace_id:
        lines.append(f"Trace of the round's batch: {story.trace_id} (its submission, matching run, notices and their "
                     "e-mails); its lines in the three logs:")
        lines.append(f"  {follow_trace_command(story.data_dir, story.trace_id)}")
    lines.append(f"The demo took {story.seconds:.1f} s end to end.")
    return lines
