"""The portal in a real browser (Debian's chromium, headless, driven by Playwright) against the real services as
separate processes (embedded broker, SQLite, SMTP sink): the journeys of an entrepreneur and an institution, in
Dutch and in English, a keyboard-only journey, and axe-core's WCAG 2.1 A/AA rules on every page visited.

An entrepreneur signs up, fills in the firm profile (a wrong KvK number first), sets contact and availability,
submits an assignment and reads where it went; a coordinator's batch (through the API) matches it; the
entrepreneur reads the match in plain words (no internal id on the page), accepts it and sees the kickoff with
a calendar download. An institution person accepts an e-mailed invitation, imports 50 teams from an XLSX with
two bad rows, reads both errors against their rows, fixes them and imports all 50.

Without chromium these tests skip with that reason; under CI=true they fail (.ci/run installs it).
Set WERKPLAATS_SCREENSHOTS=<folder> to keep a screenshot of each main page (docs/screenshots holds them).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import openpyxl
import pytest
from werkplaats_shared.devstack.demo import Api, ApiError, DemoData, setup_demo_data, wait_for
from werkplaats_shared.devstack.smtp_sink import read_mails
from werkplaats_shared.devstack.stack import PORTAL, SERVICES, LocalStack, StackConfig

from ..conftest import IN_CI, free_port
from .conftest import FAST

pytestmark = pytest.mark.e2e

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update", "--disable-extensions"]
PASSWORD = "een lang wachtwoord 2027"
TEXTS = {
    "nl": {"sign_up": "Account aanmaken", "profile": "Bedrijfsprofiel invullen", "kvk_error": "8 cijfers",
           "saved_profile": "opgeslagen", "submitted": "Opdracht ingediend", "accept": "Accepteren",
           "send_answer": "Antwoord versturen", "thanks": "kennismaking", "import_problems": "problemen in het bestand",
           "imported": "50 teams geïmporteerd", "team_of": "van", "kickoff_status": "Voorgesteld"},
    "en": {"sign_up": "Create an account", "profile": "Fill in the firm profile", "kvk_error": "8 digits",
           "saved_profile": "saved", "submitted": "Assignment submitted", "accept": "Accept",
           "send_answer": "Send my answer", "thanks": "kickoff", "import_problems": "problems in the file",
           "imported": "50 teams imported", "team_of": "of", "kickoff_status": "Proposed"},
}


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        reason = "chromium is not installed (apt-get install chromium; .ci/run installs it)"
        if IN_CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return found


@dataclass
class World:
    stack: LocalStack
    data: DemoData
    seen: dict[str, list[str]] = field(default_factory=dict)  # page path -> axe violations found there

    @property
    def portal(self) -> str:
        return self.stack.portal_url


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    ports = {s: free_port() for s in SERVICES}
    ports[PORTAL] = free_port()
    stack = LocalStack(StackConfig(data_dir=str(tmp_path_factory.mktemp("portal")), ports=ports,
                                   smtp_port=free_port(), extra_env=dict(FAST), portal=True))
    stack.start()
    try:
        data = setup_demo_data(stack, say=lambda _line: None)
        yield World(stack, data)
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


class Visitor:
    """One person's browser: every page it lands on is checked with axe-core (WCAG 2.1 A and AA)."""

    def __init__(self, world: World, browser: Any, language: str) -> None:
        self.world = world
        self.context = browser.new_context(locale="nl-NL" if language == "nl" else "en-GB")
        self.page = self.context.new_page()
        self.page.set_default_timeout(15000)
        self.language = language
        self.csp_errors: list[str] = []
        self.page.on("console", lambda m: self.csp_errors.append(m.text)
                     if "Content Security Policy" in m.text else None)

    def close(self) -> None:
        self.context.close()

    def check(self) -> None:
        from axe_playwright_python.sync_playwright import Axe

        self.page.wait_for_load_state("load")
        path = self.page.url.split("://", 1)[1].split("/", 1)[1].split("?")[0]
        result = Axe().run(self.page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS}})
        found = [f"{v['id']}: {v['help']} ({len(v['nodes'])}x: {v['nodes'][0]['target']})"
                 for v in result.response["violations"]]
        self.world.seen.setdefault("/" + path, []).extend(found)
        assert not found, f"axe-core on /{path}: {found}"

    def goto(self, path: str, status: int = 200) -> None:
        response = self.page.goto(self.world.portal + path)
        assert response is not None and response.status == status, (path, response and response.status)
        self.check()

    def click(self, text: str, role: str = "link") -> None:
        self.page.get_by_role(role, name=text).first.click()
        self.check()

    def submit(self, text: str) -> None:
        self.page.get_by_role("button", name=text).first.click()
        self.check()

    def main_text(self) -> str:
        return str(self.page.locator("main").inner_text())

    def shot(self, name: str) -> None:
        folder = os.environ.get("WERKPLAATS_SCREENSHOTS")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(folder) / f"{name}-{self.language}.png"), full_page=True)

    def switch_language(self) -> None:
        if self.language == "en":
            self.page.select_option("#language-choice", "en")
            self.page.get_by_role("button", name="Wisselen").click()
            self.check()
            assert self.page.locator("html").get_attribute("lang") == "en"


def _coordinator_batch(world: World, assignment_id: str) -> dict[str, Any]:
    intake = Api(world.stack.url("intake"), world.data.coordinator_key)
    batch = intake.post("/batches", {"workspace_id": world.data.workspace_id, "period": "2027-S1",
                                     "assignment_ids": [assignment_id]})
    return dict(wait_for("the batch matched", lambda: (b := intake.get(f"/batches/{batch['id']}"))["status"]
                         == "matched" and b, timeout=90))


@pytest.mark.parametrize("language", ["nl", "en"])
def test_an_entrepreneur_signs_up_submits_an_assignment_and_accepts_the_match_in_plain_words(
        world: World, browser: Any, language: str) -> None:
    t = TEXTS[language]
    me = Visitor(world, browser, language)
    try:
        me.goto("/")
        me.switch_language()
        me.click(t["sign_up"])
        firm = f"Kaasboerderij De Weide {language.upper()}"
        me.page.fill("#organisation_name", firm)
        me.page.fill("#email", f"eigenaar-{language}@kaas.example.org")
        me.page.fill("#password", PASSWORD)
        me.page.fill("#password_again", PASSWORD)
        me.submit("Account aanmaken" if language == "nl" else "Create the account")
        assert firm in me.main_text()
        me.click(t["profile"])
        # a wrong KvK number: the error is shown at the top and at the field, tied to it for screen readers
        me.page.fill("#kvk_number", "123")
        me.page.fill("#sector", "agrarisch")
        me.page.check("#size_class-0")
        me.page.select_option("#municipality", "GM0193")
        me.submit("Opslaan" if language == "nl" else "Save")
        assert t["kvk_error"] in me.page.locator("#error-summary").inner_text()
        assert me.page.get_attribute("#kvk_number", "aria-invalid") == "true"
        assert "kvk_number-error" in (me.page.get_attribute("#kvk_number", "aria-describedby") or "")
        me.page.fill("#kvk_number", "7700000" + ("1" if language == "nl" else "2"))
        me.submit("Opslaan" if language == "nl" else "Save")
        assert t["saved_profile"] in me.main_text()
        me.shot("entrepreneur-home")

        me.goto("/firm/contact")
        me.page.fill("#email", f"planning-{language}@kaas.example.org")
        me.submit("Opslaan" if language == "nl" else "Save")
        me.goto("/firm/availability")
        for day in ("#weekdays-0", "#weekdays-1", "#weekdays-2", "#weekdays-3", "#weekdays-4"):
            me.page.check(day)
        me.page.fill("#starts_at", "09:00")
        me.page.fill("#ends_at", "17:00")
        me.page.check("#venue-1")  # online
        me.submit("Opslaan" if language == "nl" else "Save")

        me.goto("/firm/assignments/new")
        title = "Webshop voor onze kaas" if language == "nl" else "A webshop for our cheese"
        me.page.fill("#title", title)
        me.page.fill("#description", "Bestellen en betalen online.")
        me.page.select_option("#theme", "webshop")
        me.page.check("#kind-1")
        me.page.check("#accepted_levels-0")
        me.page.check("#accepted_levels-1")
        me.page.fill("#required_skills", "webshop")
        me.page.check("#mode-2")
        me.shot("entrepreneur-new-assignment")
        sent = me.page.evaluate("() => [...new FormData(document.querySelector('main form[method=post]'))]")
        me.submit("Opdracht indienen" if language == "nl" else "Submit the assignment")
        assert t["submitted"] in me.main_text() and "Werkplaats Regio IJssel" in me.main_text()
        # the same form sent a second time (a double click, a resent request): still one assignment
        again = me.page.request.post(world.portal + "/firm/assignments/new",
                                     data=urlencode([tuple(pair) for pair in sent]),
                                     headers={"Content-Type": "application/x-www-form-urlencoded"}, max_redirects=0)
        assert again.status == 302 and again.headers["location"].endswith("/submitted")
        me.click("Opdracht bekijken" if language == "nl" else "View the assignment")
        assignment_id = me.page.url.rsplit("/", 1)[1]
        mine = [a for a in Api(world.stack.url("intake"), world.data.coordinator_key).get(
            "/assignments?page_size=100") if a["firm_name"] == firm]
        assert len(mine) == 1, "sending the same form twice made two assignments"
        # change it while no round has it yet
        me.click("Wijzigen" if language == "nl" else "Change")
        title = title + (" en kaasschaaf" if language == "nl" else " and cheese slicer")
        me.page.fill("#title", title)
        me.page.check("#mode-0")
        me.submit("Opslaan" if language == "nl" else "Save")
        assert title in me.main_text()
        assert ("Bij ons op locatie" if language == "nl" else "At our premises") in me.main_text()

        batch = _coordinator_batch(world, assignment_id)
        assert batch["matches"], "the demo teams should place a webshop assignment"

        me.goto("/firm/matches")
        text = me.main_text()
        assert title in text
        team = Api(world.stack.url("intake"), world.data.coordinator_key).get(
            f"/teams/{batch['matches'][0]['team_id']}")
        assert team["code"] in text and ("Demo" in text) and team["level"] in text
        assert "semester 1, 2027" in text and "2027-S1" not in text
        assert not UUID.search(me.page.locator("body").inner_text()), "a page shows an internal id"
        me.shot("entrepreneur-matches")
        me.page.get_by_label(t["accept"], exact=False).first.check()
        me.submit(t["send_answer"])
        assert t["thanks"] in me.main_text().lower()

        me.goto("/firm/kickoffs")
        wait_for("the kickoff row", lambda: (me.page.reload(), t["kickoff_status"] in me.main_text())[1], timeout=30)
        assert title in me.main_text()
        me.shot("entrepreneur-kickoffs")
        # the firm agrees to the proposed time; confirmed once the team's institution agrees too
        me.submit("Akkoord met dit moment" if language == "nl" else "Agree to this time")
        assert ("U bent akkoord; wacht op de onderwijsinstelling van het team" if language == "nl"
                else "You agreed; waiting for the team's institution") in me.main_text()
        [kickoff] = [k for k in Api(world.stack.url("scheduling"), world.data.coordinator_key).get(
            "/kickoffs?page_size=100") if k["assignment_id"] == assignment_id]
        assert (kickoff["firm_agreed"], kickoff["confirmed"]) == (True, False)
        # a planner of the team's institution (the others do not see the kickoff) agrees on its overview
        [institution_key] = [key for key in world.data.institution_keys if _sees(world, key, kickoff["match_id"])]
        planner = _accepted_invitation(world, browser, institution_key, f"planner-{language}@kaas-team.example.org",
                                       language)
        try:
            planner.goto("/institution")
            agree = "Akkoord met dit moment" if language == "nl" else "Agree to this time"
            planner.page.locator("tr", has_text=title).get_by_role("button", name=agree).click()
            planner.check()
            row = planner.page.locator("tr", has_text=title).inner_text()
            assert ("Bevestigd: de ondernemer en u zijn akkoord" if language == "nl"
                    else "Confirmed: the firm and you agreed") in row
        finally:
            planner.close()
        me.goto("/firm/kickoffs")
        assert ("Bevestigd: u en de onderwijsinstelling van het team zijn akkoord" if language == "nl"
                else "Confirmed: you and the team's institution agreed") in me.main_text()
        ics = me.page.request.get(world.portal + "/firm/calendar.ics")
        assert ics.status == 200 and "BEGIN:VCALENDAR" in ics.text()
        assert not me.csp_errors, me.csp_errors
    finally:
        me.close()


def _sees(world: World, key: str, match_id: str) -> bool:
    try:
        Api(world.stack.url("scheduling"), key).get(f"/kickoffs/{match_id}")
    except ApiError as exc:
        assert exc.status == 404
        return False
    return True


def _invitation_link(world: World, email: str) -> str:
    def found() -> str | None:
        for mail in read_mails(world.stack.maildir):
            if mail["To"] != email:
                continue
            part = mail if not mail.is_multipart() else mail.get_payload(0)
            text = bytes(part.get_payload(decode=True) or b"").decode("utf-8", "replace")  # type: ignore[union-attr]
            link = re.search(r"https?://\S+/invitations/\S+", text)
            if link:
                return link.group(0)
        return None

    return str(wait_for("the invitation mail", found, timeout=30))


def _teams_workbook(language: str, bad_rows: dict[int, dict[str, Any]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["code", "level", "size", "skills"])  # the workspace and period are chosen on the page
    for i in range(1, 51):
        row = {"code": f"IMP-{language}-{i:02d}", "level": "MBO", "size": 4, "skills": "website;webshop",
               **bad_rows.get(i, {})}
        sheet.append([row["code"], row["level"], row["size"], row["skills"]])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.mark.parametrize("language", ["nl", "en"])
def test_an_institution_accepts_its_invitation_and_imports_fifty_teams_after_fixing_two_rows(
        world: World, browser: Any, language: str) -> None:
    t = TEXTS[language]
    email = f"plaatsing-{language}@demo-mbo.example.org"
    Api(world.stack.url("intake"), world.data.institution_keys[0]).post(
        "/invitations", {"email": email, "language": language})
    link = _invitation_link(world, email)
    me = Visitor(world, browser, language)
    try:
        me.page.goto(link)
        me.check()
        assert "Demo MBO College" in me.main_text()
        me.page.fill("#password", PASSWORD)
        me.page.fill("#password_again", PASSWORD)
        me.submit("Mijn account aanmaken" if language == "nl" else "Create my account")
        assert "Demo MBO College" in me.main_text()
        me.shot("institution-home")
        me.goto("/institution/teams/import")
        upload = Path(world.stack.data_dir) / f"teams-{language}.xlsx"
        upload.write_bytes(_teams_workbook(language, {7: {"level": "XBO"}, 23: {"size": 40}}))
        me.page.set_input_files("#file", str(upload))
        me.submit("Importeren" if language == "nl" else "Import")
        problems = me.page.locator("#import-problems").inner_text()
        assert t["import_problems"] in problems
        rows = [r.inner_text() for r in me.page.locator("#import-problems tbody tr").all()]
        assert len(rows) == 2 and rows[0].startswith("8") and rows[1].startswith("24")  # header is row 1
        assert "level" in rows[0] and "size" in rows[1]
        me.shot("institution-import-errors")
        upload.write_bytes(_teams_workbook(language, {}))
        me.page.set_input_files("#file", str(upload))
        me.submit("Importeren" if language == "nl" else "Import")
        assert t["imported"] in me.main_text()
        assert sum(f"IMP-{language}-" in r for r in me.main_text().splitlines()) == 50
        me.shot("institution-teams")
        me.click(f"IMP-{language}-07")
        me.page.fill("#size", "5")
        me.page.fill("#skills", "website, webshop, ux")
        me.submit("Opslaan" if language == "nl" else "Save")
        row = next(r for r in me.main_text().splitlines() if f"IMP-{language}-07" in r)
        assert "\t5\t" in row and "ux" in row, row
        for page in ("/institution", "/institution/capacity"):
            me.goto(page)
        # the calendar: the region (suggested from the campus's province until one is saved), and carnival
        # week ticked in one step instead of typed as an ISO week
        scheduling = Api(world.stack.url("scheduling"), world.data.institution_keys[0])
        try:
            saved_region = scheduling.get("/institution-calendar")["region"]
        except ApiError as exc:
            assert exc.status == 404
            saved_region = None
        _set_campus(world, "GM0193")  # Zwolle, Overijssel: region noord
        me.goto("/institution/calendar")
        assert me.page.locator("input[name=region]:checked").get_attribute("value") == (saved_region or "noord")
        assert (("Voorgesteld" if language == "nl" else "Suggested") in me.main_text()) is (saved_region is None)
        me.page.check("input[name=region][value=zuid]")
        carnival = me.page.get_by_label(re.compile(r"^Carnavalsweek \d{4}" if language == "nl" else
                                                   r"^Carnival week \d{4}")).first
        carnival.check()
        me.submit("Opslaan" if language == "nl" else "Save")
        assert carnival.is_checked()
        saved = Api(world.stack.url("scheduling"), world.data.institution_keys[0]).get("/institution-calendar")
        assert saved["region"] == "zuid"
        spans = [(date.fromisoformat(s["start"]), date.fromisoformat(s["end"])) for s in saved["non_teaching"]]
        assert len(spans) == 1 and spans[0][0].weekday() == 0 and (spans[0][1] - spans[0][0]).days == 6
        assert spans[0][0].month in (2, 3)  # carnival falls in February or early March
        assert not me.csp_errors, me.csp_errors
    finally:
        me.close()


def _set_campus(world: World, code: str) -> None:
    """The first institution's campus, in the municipality with this code (a PATCH with its ETag)."""
    import json
    import urllib.request

    url, key = world.stack.url("intake") + "/institution", world.data.institution_keys[0]
    with urllib.request.urlopen(urllib.request.Request(
            url, headers={"Authorization": f"Bearer {key}"})) as resp:
        etag = resp.headers["ETag"]
    body = json.dumps({"campuses": [{"name": "Hoofdvestiging", "municipality": code}]}).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=body, method="PATCH", headers={
            "Authorization": f"Bearer {key}", "Content-Type": "application/json", "If-Match": etag})) as resp:
        assert resp.status == 200


def test_keyboard_alone_signs_in_and_reaches_a_form(world: World, browser: Any) -> None:
    """Tab order: skip link first, then the page's controls in reading order; Enter follows links and submits."""
    Api(world.stack.url("intake"), world.data.firm_keys[1]).post(
        "/invitations", {"email": "toetsenbord@fietsen.example.org", "language": "nl"})
    link = _invitation_link(world, "toetsenbord@fietsen.example.org")
    me = Visitor(world, browser, "nl")
    try:
        me.page.goto(link)
        me.page.fill("#password", PASSWORD)
        me.page.fill("#password_again", PASSWORD)
        me.submit("Mijn account aanmaken")
        me.page.get_by_role("button", name="Uitloggen").click()
        me.goto("/sign-in")
        before = {c["name"]: c["value"] for c in me.context.cookies()}["werkplaats_session"]
        me.page.keyboard.press("Tab")
        assert me.page.evaluate("document.activeElement.className").startswith("utrecht-skip-link")

        def tab_to(selector: str, limit: int = 20) -> None:
            for _ in range(limit):
                if me.page.evaluate("s => document.activeElement === document.querySelector(s)", selector):
                    return
                me.page.keyboard.press("Tab")
            raise AssertionError(f"Tab never reached {selector}")

        tab_to("#email")
        me.page.keyboard.type("toetsenbord@fietsen.example.org")
        me.page.keyboard.press("Tab")
        assert me.page.evaluate("document.activeElement.id") == "password"
        me.page.keyboard.type(PASSWORD)
        me.page.keyboard.press("Enter")
        me.page.wait_for_url(re.compile(r".*/firm$"))
        me.check()
        after = {c["name"]: c["value"] for c in me.context.cookies()}["werkplaats_session"]
        assert after != before, "signing in keeps the session id it had before (session fixation)"
        tab_to("a[href='/firm/assignments/new']")
        me.page.keyboard.press("Enter")
        me.page.wait_for_url(re.compile(r".*/firm/assignments/new$"))
        me.check()
        focus_ring = me.page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert focus_ring != "none" or me.page.evaluate("document.activeElement.tagName") == "BODY"
    finally:
        me.close()


def _accepted_invitation(world: World, browser: Any, key: str, email: str, language: str = "nl") -> Visitor:
    Api(world.stack.url("intake"), key).post("/invitations", {"email": email, "language": language})
    link = _invitation_link(world, email)
    me = Visitor(world, browser, language)
    me.page.goto(link)
    me.page.fill("#password", PASSWORD)
    me.page.fill("#password_again", PASSWORD)
    me.submit("Mijn account aanmaken" if language == "nl" else "Create my account")
    return me


def _mailed_link(world: World, email: str, kind: str) -> str:
    """The link of that kind in a mail to this address (a Maildir's order is not the order of arrival)."""

    def link() -> str | None:
        for mail in read_mails(world.stack.maildir):
            if mail["To"] == email:
                part = mail if not mail.is_multipart() else mail.get_payload(0)
                text = bytes(part.get_payload(decode=True) or b"").decode()  # type: ignore[union-attr]
                found = re.search(rf"https?://\S+/{kind}/\S+", text)
                if found:
                    return found.group(0)
        return None

    return str(wait_for(f"the {kind} mail", link, timeout=30))


def test_a_sign_in_link_works_once(world: World, browser: Any) -> None:
    email = "link@hendriks.example.org"
    me = _accepted_invitation(world, browser, world.data.firm_keys[2], email)
    try:
        me.page.get_by_role("button", name="Uitloggen").click()
        me.goto("/sign-in/link")
        me.page.fill("#email", email)
        me.submit("Stuur mij een link")
        assert "Kijk in uw e-mail" in me.main_text()
        url = _mailed_link(world, email, "sign-in/link")
        me.page.goto(url)
        me.check()
        assert "/firm" not in me.page.url  # opening the link (a mail scanner does) does not use it up
        me.submit("Inloggen")
        assert me.page.url.endswith("/firm")
        me.page.get_by_role("button", name="Uitloggen").click()
        me.page.goto(url)
        me.submit("Inloggen")
        assert "werkt niet meer" in me.main_text()
    finally:
        me.close()


def test_a_session_reaches_only_its_own_role_and_organisation_and_every_form_needs_its_csrf_token(
        world: World, browser: Any) -> None:
    import requests
    from portal.bootstrap import build
    from portal.config import PortalSettings

    firm = _accepted_invitation(world, browser, world.data.firm_keys[3], "eigenaar@kapsalon.example.org")
    other = _accepted_invitation(world, browser, world.data.firm_keys[4], "eigenaar@transport.example.org")
    try:
        other_assignment = Api(world.stack.url("intake"), world.data.firm_keys[4]).get("/assignments")[0]["id"]
        for path in ("/institution", "/institution/teams", "/coordinator", f"/firm/assignments/{other_assignment}",
                     f"/firm/assignments/{other_assignment}/edit"):
            response = firm.page.goto(world.portal + path)
            assert response is not None and response.status == 404, path
        assert other.page.goto(world.portal + f"/firm/assignments/{other_assignment}").status == 200  # type: ignore
        # the same signed-in session, without the form's CSRF token: every state-changing route refuses
        cookies = {c["name"]: c["value"] for c in firm.context.cookies()}
        http = requests.Session()
        http.cookies.update(cookies)
        app = build(PortalSettings(secret_key="x" * 40, data_dir=str(Path(world.stack.data_dir) / "probe")))
        posts = [r for r in app.url_map.iter_rules() if "POST" in (r.methods or set())]
        assert len(posts) >= 15
        for rule in posts:
            path = re.sub(r"<[^>]+>", "x", rule.rule)
            answer = http.post(world.portal + path, data={"decision": "accepted", "language": "en",
                                                          "email": "a@b.example.org"}, allow_redirects=False)
            assert answer.status_code == 400, (rule.rule, answer.status_code)
        assert firm.page.goto(world.portal + "/firm").status == 200  # type: ignore[union-attr]
    finally:
        firm.close()
        other.close()


def test_signing_out_revokes_the_session_everywhere(world: World, browser: Any) -> None:
    me = _accepted_invitation(world, browser, world.data.firm_keys[5], "eigenaar@tuincentrum.example.org")
    try:
        cookies = me.context.cookies()
        me.page.get_by_role("button", name="Uitloggen").click()
        # the old session cookie no longer opens anything
        replay = me.context.browser.new_context()
        replay.add_cookies(cookies)
        page = replay.new_page()
        page.goto(world.portal + "/firm")
        assert "/sign-in" in page.url
        replay.close()
    finally:
        me.close()


def test_an_entrepreneur_registers_for_a_workshop_gets_a_seat_and_cancels_it(world: World, browser: Any) -> None:
    coordinator = Api(world.stack.url("scheduling"), world.data.coordinator_key)
    slots = [{"date": "2027-03-09", "day_part": "morning"}, {"date": "2027-03-16", "day_part": "afternoon"}]
    programme = coordinator.post("/workshop-programmes", {"title": "Digitaal ondernemen, voorjaar 2027",
                                                          "slots": slots, "min_participants": 1})
    base = f"/workshop-programmes/{programme['id']}"
    coordinator.post(f"{base}/rooms", {"municipality_code": "GM0193", "name": "Zaal De Fabriek", "capacity": 12,
                                       "availability": slots})
    coordinator.post(f"{base}/facilitators", {"label": "F-01", "themes": ["cyber_resilience"], "availability": slots})
    me = _accepted_invitation(world, browser, world.data.firm_keys[6], "eigenaar@smit.example.org")
    try:
        me.goto("/firm/workshops")
        me.click("Digitaal ondernemen, voorjaar 2027")
        me.page.select_option("#theme", "cyber_resilience")
        me.page.check("#available_days-0")
        me.page.check("#locations-0")
        me.submit("Mijn belangstelling aanmelden")
        assert "belangstelling is geregistreerd" in me.main_text()
        job = coordinator.post(f"{base}/plan", {})  # a plan job: the scheduling worker does it
        wait_for("the workshop plan", lambda: coordinator.get(f"/plan-jobs/{job['id']}")["status"] == "done")
        me.goto("/firm/workshops")
        text = me.main_text()
        assert "U hebt een plaats" in text and "9 maart 2027" in text and "Zaal De Fabriek" in text
        me.shot("entrepreneur-workshops")
        me.submit("Annuleren")
        assert "geannuleerd" in me.main_text() and "Nog geen sessies." in me.main_text()
    finally:
        me.close()


def test_a_firm_outside_every_working_area_is_referred_to_schemes_that_can_help(world: World, browser: Any) -> None:
    """The Gooi & Vechtstreek case: no workspace serves Hilversum, so the assignment is referred, in words."""
    # the referring workspace's own scheme (the portal submits an out-of-area firm's work to the first workspace)
    Api(world.stack.url("intake"), world.data.coordinator_key).put(
        f"/workspaces/{world.data.workspace_id}/referral-schemes/cyber-check", {
            "name_nl": "Cybercheck voor het mkb", "name_en": "Cyber check for small firms",
            "url": "https://www.example.nl/cybercheck", "themes": ["cyber_security"]})
    me = Visitor(world, browser, "nl")
    try:
        me.goto("/sign-up")
        me.page.fill("#organisation_name", "Drukkerij Hilversum")
        me.page.fill("#email", "eigenaar@drukkerij-hilversum.example.org")
        me.page.fill("#password", PASSWORD)
        me.page.fill("#password_again", PASSWORD)
        me.submit("Account aanmaken")
        me.goto("/firm/profile")
        me.page.fill("#kvk_number", "77000099")
        me.page.fill("#sector", "grafisch")
        me.page.check("#size_class-0")
        me.page.select_option("#municipality", "GM0402")
        me.submit("Opslaan")
        me.goto("/firm/profile")
        assert "Er is nog geen werkplaats voor Hilversum" in me.main_text()
        me.goto("/firm/assignments/new")
        me.page.fill("#title", "Beveiliging van onze klantportal")
        me.page.select_option("#theme", "cyber_security")
        me.page.check("#kind-0")
        me.page.check("#accepted_levels-1")
        me.page.check("#mode-1")
        me.submit("Opdracht indienen")
        text = me.main_text()
        assert "Er is nog geen werkplaats voor uw gemeente" in text
        schemes = me.page.locator("main ul li a").all()
        assert schemes, "the referral names at least one scheme"
        assert all((a.get_attribute("href") or "").startswith("https://") for a in schemes)
        assert "Cybercheck voor het mkb" in text
        me.shot("entrepreneur-referred")
    finally:
        me.close()


def _wait_for_text(me: Visitor, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in me.main_text():
        assert time.monotonic() < deadline, f"{text!r} never appeared: {me.main_text()[:500]}"
        time.sleep(1)
        me.page.reload()
    me.check()


def test_a_coordinator_builds_a_round_forbids_a_pair_runs_it_again_and_publishes(world: World, browser: Any) -> None:
    me = _accepted_invitation(world, browser, world.data.coordinator_key, "coordinator@ijssel.example.org")
    try:
        assert me.page.url.endswith("/coordinator")
        me.check()
        me.click("Nieuwe ronde")
        assert "Bakkerij De Korenbloem" not in me.main_text()  # firms' names are not needed to choose
        waiting = me.page.locator("input[name=assignment_ids]").count()
        assert waiting >= 2
        assert "Webshop voor taarten" in me.main_text()
        me.page.check("#policy-0")
        me.shot("coordinator-new-round")
        me.submit("Ronde starten")
        _wait_for_text(me, "Passendheid")  # the result table
        assert "Aanbod tegenover vraag" in me.main_text()  # the pre-check, in words
        rows = me.page.locator("#round-matches tbody tr")
        assert rows.count() >= 1
        first = rows.first.inner_text()
        assert "Demo" in first  # the institution's name, not an id
        assert not UUID.search(me.page.locator("body").inner_text())
        me.shot("coordinator-round")
        pair = me.page.locator("#pair option").first.inner_text()
        me.page.fill("#reason", "Dit team werkte vorig jaar al voor dit bedrijf")
        me.submit("Paar uitsluiten")
        assert "uitgesloten" in me.main_text()
        me.submit("Opnieuw uitvoeren")
        _wait_for_text(me, "Passendheid")
        _wait_for_text(me, "Klaar om te publiceren")
        assert pair not in [o.inner_text() for o in me.page.locator("#pair option").all()]
        me.click("De laatste twee uitvoeringen vergelijken")
        team_code, assignment_title = pair.split(": ", 1)
        dropped = me.page.locator("#compare-removed").inner_text()
        assert team_code in dropped and assignment_title in dropped  # the forbidden pair, in names
        assert not UUID.search(me.page.locator("body").inner_text())
        me.shot("coordinator-compare")
        me.click("Terug naar de ronde")
        me.submit("Matches publiceren")
        _wait_for_text(me, "Gepubliceerd")
        me.goto("/coordinator")
        assert "semester 1, 2027" in me.main_text()
        me.shot("coordinator-rounds")
    finally:
        me.close()
