"""Intake answers errors in Dutch by default and in English on request, with the same JSON shape.

Each bad request below is sent in both languages: status, error name, fields, rows and columns must be
the same; the message and every reason must be translated (no English left in the Dutch answer)."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from intake.domain import messages
from intake.entrypoints.i18n import dutch_error_body
from werkzeug.test import TestResponse

from . import test_intake_api
from .test_intake_api import MIB, World, assignment_body, batch_body, firm_body, team_body, workspace_body
from .test_intake_bulk import upload

world = test_intake_api.world

INTAKE = Path(__file__).resolve().parents[2] / "services" / "intake" / "intake"
Request = Callable[[World, dict[str, str]], TestResponse]


def etag_of(w: World, who: str, path: str) -> str:
    return w.get(who, path).headers["ETag"]


BAD_REQUESTS: dict[str, Request] = {
    "unknown nested field": lambda w, h: w.post("coord_a", "/workspaces", workspace_body(periods=[
        {"code": "Q", "starts_on": "2025-01-01", "ends_on": "2025-02-01", "colour": "red"}]), headers=h),
    "missing and mistyped fields": lambda w, h: w.post("inst_1", "/teams", {
        "workspace_id": w.ids["ws_a"], "code": "", "level": "PhD", "size": "4", "period": None,
        "skills": "python", "travel_limit_km": 900}, headers=h),
    "unknown municipality": lambda w, h: w.post("coord_a", "/workspaces", workspace_body(
        municipalities=["GM9999", "Amsterdam"]), headers=h),
    "dates": lambda w, h: w.post("coord_a", "/workspaces", workspace_body(periods=[
        {"code": "Q", "starts_on": "gisteren", "ends_on": "2025-02-01"}]), headers=h),
    "period ends before it starts": lambda w, h: w.post("coord_a", "/workspaces", workspace_body(periods=[
        {"code": "Q", "starts_on": "2025-03-01", "ends_on": "2025-02-01"}]), headers=h),
    "invalid json": lambda w, h: w.post("coord_a", "/workspaces", data="{nope", content_type="application/json",
                                        headers=h),
    "body too large": lambda w, h: w.post("coord_a", "/workspaces", data=json.dumps({"x": "x" * MIB}),
                                          content_type="application/json", headers=h),
    "no key": lambda w, h: w.get(None, "/teams", headers=h),
    "bad key": lambda w, h: w.get(None, "/teams", headers={**h, "Authorization": "Bearer wpk_nope_nope"}),
    "wrong role": lambda w, h: w.post("inst_1", "/assignments", assignment_body(w.ids["ws_a"]), headers=h),
    "either role": lambda w, h: w.post("inst_1", f"/assignments/{w.ids['a1']}/withdraw", headers=h),
    "not found": lambda w, h: w.get("inst_1", "/teams/does-not-exist", headers=h),
    "method not allowed": lambda w, h: w.call("coord_a", "DELETE", "/workspaces", headers=h),
    "if-match missing": lambda w, h: w.call("firm_1", "PATCH", "/firm", {"sector": "brood"}, headers=h),
    "if-match stale": lambda w, h: w.call("firm_1", "PATCH", "/firm", {"sector": "brood"},
                                          headers={**h, "If-Match": '"0000"'}),
    "kvk and cap": lambda w, h: w.call("firm_1", "PATCH", "/firm", {"kvk_number": "1234567x",
                                                                    "max_concurrent_teams": 0},
                                       headers={**h, "If-Match": etag_of(w, "firm_1", "/firm")}),
    "profile exists": lambda w, h: w.post("firm_1", "/firm", firm_body(kvk_number="99999999"), headers=h),
    "period outside calendar": lambda w, h: w.post("inst_1", "/teams", team_body(w.ids["ws_a"], period="2030-Q9"),
                                                   headers=h),
    "level not offered": lambda w, h: w.post("inst_2", "/teams", team_body(w.ids["ws_a"], level="HBO"), headers=h),
    "fairness floor": lambda w, h: w.post("coord_a", "/batches", batch_body(w.ids["ws_a"], [w.ids["a1"]],
                                          fairness_floors=[{"dimension": "region", "value": "Atlantis",
                                                            "min_share": 0.5}]), headers=h),
    "assignment of another period": lambda w, h: w.post("coord_a", "/batches", batch_body(
        w.ids["ws_a"], [w.ids["a1_q2"]]), headers=h),
    "idempotency key too long": lambda w, h: w.post("coord_a", "/workspaces", workspace_body(),
                                                    headers={**h, "Idempotency-Key": "k" * 300}),
    "import without a file": lambda w, h: w.post("inst_1", "/imports/capacity", data={}, headers=h),
}


def withdrawn_twice(w: World, h: dict[str, str]) -> TestResponse:
    assert w.post("firm_1", f"/assignments/{w.ids['a1']}/withdraw").status_code == 200
    return w.post("firm_1", f"/assignments/{w.ids['a1']}/withdraw", headers=h)


BAD_REQUESTS["illegal transition"] = withdrawn_twice


def shape(body: dict[str, Any]) -> tuple[Any, ...]:
    return (body["status"], body["error"], sorted(body),
            [(e["field"], e.get("row"), e.get("column"), sorted(e)) for e in body["errors"]])


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_errors_are_dutch_by_default_and_english_on_request(world: World, case: str) -> None:
    send = BAD_REQUESTS[case]
    before = world.snapshot()
    answers: dict[str, dict[str, Any]] = {}
    for label, headers in [("default", {}), ("nl", {"Accept-Language": "nl-NL,nl;q=0.9"}),
                           ("en", {"Accept-Language": "en-GB,en;q=0.8"}), ("query", {})]:
        if case == "illegal transition" and label != "default":
            query = "?lang=en" if label == "query" else ""
            resp = world.post("firm_1", f"/assignments/{world.ids['a1']}/withdraw{query}", headers=headers)
        else:
            resp = send(world, headers) if label != "query" else _with_lang_query(world, send)
        assert resp.status_code >= 400 and resp.is_json, (case, label, resp.get_data(as_text=True))
        assert resp.headers["Content-Language"] == ("en" if label in ("en", "query") else "nl")
        assert "Accept-Language" in resp.headers.get("Vary", "")
        answers[label] = resp.get_json()
    dutch, english = answers["default"], answers["en"]
    assert answers["nl"] == dutch and answers["query"] == english
    assert shape(dutch) == shape(english)
    assert dutch["message"] != english["message"], english["message"]
    for nl, en in zip(dutch["errors"], english["errors"], strict=True):
        assert nl["reason"] != en["reason"], en["reason"]
    if case != "illegal transition":
        assert world.snapshot() == before


def _with_lang_query(world: World, send: Request) -> TestResponse:
    original = world.client.open

    def with_query(path: str, *args: Any, **kwargs: Any) -> Any:
        return original(path + ("&" if "?" in path else "?") + "lang=en", *args, **kwargs)

    setattr(world.client, "open", with_query)  # noqa: B010 - a method swapped for one request
    try:
        return send(world, {})
    finally:
        setattr(world.client, "open", original)  # noqa: B010


def test_known_texts_read_naturally_in_both_languages(world: World) -> None:
    resp = world.post("inst_1", "/teams", team_body(world.ids["ws_a"], period="2030-Q9"))
    assert resp.get_json()["errors"] == [
        {"field": "period", "reason": "Periode '2030-Q9' staat niet in de kalender van de werkplaats."}]
    resp = world.post("inst_1", "/teams", team_body(world.ids["ws_a"], period="2030-Q9"),
                      headers={"Accept-Language": "en"})
    assert resp.get_json()["errors"] == [
        {"field": "period", "reason": "period '2030-Q9' is not in the workspace's calendar"}]
    resp = world.post("coord_a", "/workspaces", workspace_body(municipalities=["GM0003"]))
    assert resp.get_json()["errors"] == [{"field": "municipalities.0", "reason": "Geen bestaande CBS-gemeentecode."}]
    resp = upload(world, "inst_1", "capacity", b"", lang="en")
    assert resp.get_json()["message"] == "The file is empty."
    assert upload(world, "inst_1", "capacity", b"").get_json()["message"] == "Het bestand is leeg."


def test_successful_answers_are_untouched(world: World) -> None:
    nl = world.get("inst_1", f"/teams/{world.ids['t1']}")
    en = world.get("inst_1", f"/teams/{world.ids['t1']}", headers={"Accept-Language": "en"})
    assert nl.status_code == en.status_code == 200 and nl.get_json() == en.get_json()


def test_an_unknown_text_stays_as_it_was() -> None:
    body = {"status": 422, "error": "Unprocessable Entity", "message": "something new",
            "errors": [{"field": "x", "reason": "something new", "row": 3, "column": "x"}]}
    assert dutch_error_body(body) == body
    assert messages.to_dutch("something new") is None


# ---- every reason the code writes has a Dutch text ---------------------------------------------


def _written_texts() -> list[tuple[str, str]]:
    """(where, text) for each literal reason or message in intake's code; an f-string's values are tried
    as a number, a word, a quoted word and another reason (a reason extended with more words)."""
    found: list[tuple[str, str]] = []
    for path in sorted(INTAKE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            candidates: list[ast.expr] = []
            if name == "DomainError" and len(node.args) >= 2:
                candidates.append(node.args[1])
            elif name == "ValidationError" and node.args:
                candidates.append(node.args[0])
            elif name == "abort":
                candidates += [k.value for k in node.keywords if k.arg == "message"]
                candidates += [e.values[i] for k in node.keywords if k.arg == "errors" and isinstance(k.value, ast.List)
                               for e in k.value.elts if isinstance(e, ast.Dict)
                               for i, key in enumerate(e.keys)
                               if isinstance(key, ast.Constant) and key.value == "reason"]
            for expr in candidates:
                where = f"{path.name}:{node.lineno}"
                if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
                    found.append((where, expr.value))
                elif isinstance(expr, ast.JoinedStr):
                    found += [(where, "".join(str(v.value) if isinstance(v, ast.Constant) else sample
                                               for v in expr.values))
                              for sample in ("7", "level", "'X'", "period 'X' is not in the workspace's calendar")]
    return found


def test_every_reason_in_the_code_has_a_dutch_text() -> None:
    texts = _written_texts()
    assert len(texts) > 40  # the scan finds the code's texts
    by_place: dict[str, list[str]] = {}
    for where, text in texts:
        by_place.setdefault(where, []).append(text)
    missing = [(where, variants[0]) for where, variants in by_place.items()
               if not any(messages.to_dutch(t) for t in variants)]
    assert missing == []
