"""Bulk import of assignments and teams from a spreadsheet, and the export of a batch.

An import is all or nothing. Every row goes through the rules of the single-item API: the same request
schema and the same use case (``submit_assignment``, ``register_team``), all rows in one transaction.
When any row fails, the transaction is rolled back and every problem is reported with its row (as the
user sees it in the sheet) and column. A dry run validates everything the same way and stores nothing.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from marshmallow import Schema, ValidationError
from marshmallow import fields as ma_fields
from sqlalchemy.orm import Session, sessionmaker
from werkplaats_shared.auth import Principal
from werkplaats_shared.contracts import LEVELS, Envelope

from ..adapters import orm, tabular
from ..adapters.tabular import Text
from ..domain.messages import to_dutch
from ..domain.model import KINDS, MODES, THEMES, DomainError
from . import services

MAX_ROWS = 10_000
MAX_REPORTED_PROBLEMS = 1000
_IN_CHUNK = 500  # ids per IN (...) query

Emit = Callable[[Envelope], None]
# a use case of the single-item API: creates one object from validated input, returns its id and what the
# caller should learn about it (e.g. where an assignment was routed)
Create = Callable[[Session, Emit, Principal, dict[str, Any]], tuple[str, dict[str, Any]]]


# ---- what can be imported ---------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "text", "int", "bool" or "list" (a list is written a;b;c in one cell)
    required: bool
    explanation: Text
    example: str


@dataclass(frozen=True)
class ImportKind:
    name: str
    role: str
    sheet: Text  # title of the data sheet in the XLSX template
    noun: Text  # what one row is
    schema: type[Schema]
    create: Create
    columns: tuple[Column, ...]

    @property
    def header(self) -> list[str]:
        return [c.name for c in self.columns]


def import_kind(name: str, role: str, sheet: Text, noun: Text, schema: type[Schema], create: Create,
                texts: Mapping[str, tuple[Text, str]]) -> ImportKind:
    """The columns are the request schema's fields, in its order: the template and the import can't drift
    from the single-item API."""
    columns = []
    for field_name, schema_field in schema().load_fields.items():
        if isinstance(schema_field, ma_fields.List):
            kind = "list"
        elif isinstance(schema_field, ma_fields.Integer):
            kind = "int"
        elif isinstance(schema_field, ma_fields.Boolean):
            kind = "bool"
        else:
            kind = "text"
        explanation, example = texts.get(field_name, (Text(field_name, field_name), ""))
        columns.append(Column(field_name, kind, bool(schema_field.required), explanation, example))
    return ImportKind(name, role, sheet, noun, schema, create, tuple(columns))


_LEVELS = ", ".join(LEVELS)
_WORKSPACE = (Text("Id van de werkplaats (te vinden bij de coördinator of via GET /workspaces).",
                   "Id of the workspace (ask the coordinator or see GET /workspaces)."),
              "3f2b8c1e-5d4a-4c2b-9e7f-1a2b3c4d5e6f")
_PERIOD = (Text("Code van een periode uit de kalender van de werkplaats.",
                "Code of a period in the workspace's calendar."), "2025-Q1")

ASSIGNMENT_TEXTS: dict[str, tuple[Text, str]] = {
    "workspace_id": _WORKSPACE,
    "title": (Text("Titel van de opdracht, 1 tot 200 tekens.", "Title of the assignment, 1 to 200 characters."),
              "Webwinkel voor de bakkerij"),
    "description": (Text("Beschrijving, hoogstens 5000 tekens; mag leeg blijven.",
                         "Description, at most 5000 characters; may be left empty."),
                    "Bestellen via de site, ophalen in de winkel."),
    "period": _PERIOD,
    "accepted_levels": (Text(f"Niveaus die de opdracht mogen doen ({_LEVELS}), gescheiden door ;",
                             f"Levels that may take the assignment ({_LEVELS}), separated by ;"), "HBO;WO"),
    "required_skills": (Text("Vereiste vaardigheden, gescheiden door ; (hoogstens 30); mag leeg blijven.",
                             "Required skills, separated by ; (at most 30); may be left empty."), "python;ux"),
    "nice_to_have_skills": (Text("Gewenste vaardigheden, gescheiden door ; (hoogstens 30); mag leeg blijven.",
                                 "Nice-to-have skills, separated by ; (at most 30); may be left empty."),
                            "fotografie"),
    "min_teams": (Text("Minimaal aantal teams, 1 tot 10; leeg is 1.", "Minimum number of teams, 1 to 10; empty is 1."),
                  "1"),
    "max_teams": (Text("Maximaal aantal teams, 1 tot 10, niet kleiner dan min_teams; leeg is 1.",
                       "Maximum number of teams, 1 to 10, not below min_teams; empty is 1."), "2"),
    "theme": (Text(f"Thema ({', '.join(THEMES)}); mag leeg blijven.",
                   f"Theme ({', '.join(THEMES)}); may be left empty."), "webshop"),
    "kind": (Text(f"Soort opdracht ({', '.join(KINDS)}); leeg is project.",
                  f"Kind of assignment ({', '.join(KINDS)}); empty is project."), "project"),
    "mode": (Text(f"Werkwijze ({', '.join(MODES)}); leeg is on_site.",
                  f"Way of working ({', '.join(MODES)}); empty is on_site."), "hybrid"),
    "preferred_institutions": (Text("Ids van instellingen die uw voorkeur hebben, de liefste eerst, gescheiden door ; "
                                    "(hoogstens 10); mag leeg blijven.",
                                    "Ids of the institutions you prefer, most wanted first, separated by ; "
                                    "(at most 10); may be left empty."), ""),
    "preferred_levels": (Text(f"Niveaus in volgorde van voorkeur ({_LEVELS}), gescheiden door ;; mag leeg blijven.",
                              f"Levels in order of preference ({_LEVELS}), separated by ;; may be left empty."),
                         "WO;HBO"),
}

TEAM_TEXTS: dict[str, tuple[Text, str]] = {
    "workspace_id": _WORKSPACE,
    "code": (Text("Code van het team, 1 tot 40 tekens. Geen namen van studenten.",
                  "Code of the team, 1 to 40 characters. No student names."), "HE-T01"),
    "level": (Text(f"Niveau van het team ({_LEVELS}); een niveau dat uw instelling aanbiedt.",
                   f"Level of the team ({_LEVELS}); a level your institution offers."), "HBO"),
    "size": (Text("Aantal studenten, 1 tot 12.", "Number of students, 1 to 12."), "4"),
    "skills": (Text("Vaardigheden, gescheiden door ; (hoogstens 30); mag leeg blijven.",
                    "Skills, separated by ; (at most 30); may be left empty."), "python;ux"),
    "period": _PERIOD,
    "campus": (Text("Locatie van het team, hoogstens 100 tekens; mag leeg blijven.",
                    "The team's campus, at most 100 characters; may be left empty."), "Amsterdam-Noord"),
    "travel_limit_km": (Text("Hoe ver het team wil reizen, 0 tot 500 km; mag leeg blijven.",
                             "How far the team will travel, 0 to 500 km; may be left empty."), "25"),
    "remote_allowed": (Text("Mag het team op afstand werken: ja of nee; leeg is ja.",
                            "May the team work remotely: yes or no; empty is yes."), "ja"),
    "preferences": (Text("Ids van opdrachten die het team wil, de liefste eerst, gescheiden door ; (hoogstens 10); "
                         "mag leeg blijven.",
                         "Ids of the assignments the team wants, most wanted first, separated by ; (at most 10); "
                         "may be left empty."), ""),
}


CAPACITY_TEXTS: dict[str, tuple[Text, str]] = {
    "workspace_id": _WORKSPACE,
    "programme": (Text("Opleiding, precies zoals in het profiel van de instelling (PATCH /institution).",
                       "Programme, exactly as in the institution's profile (PATCH /institution)."), "HBO-ICT"),
    "period": _PERIOD,
    "level": (Text(f"Niveau ({_LEVELS}); een niveau dat uw instelling aanbiedt.",
                   f"Level ({_LEVELS}); a level your institution offers."), "HBO"),
    "teams": (Text("Aantal teams dat de opleiding in deze periode levert, 1 tot 500.",
                   "Number of teams the programme provides in this period, 1 to 500."), "6"),
    "team_size_min": (Text("Kleinste teamgrootte, 1 tot 12.", "Smallest team size, 1 to 12."), "3"),
    "team_size_max": (Text("Grootste teamgrootte, 1 tot 12, niet kleiner dan team_size_min.",
                           "Largest team size, 1 to 12, not below team_size_min."), "5"),
    "skills": (Text("Vaardigheden van de teams, gescheiden door ; (hoogstens 30); mag leeg blijven.",
                    "Skills of the teams, separated by ; (at most 30); may be left empty."), "python;ux"),
    "supervision_hours": (Text("Uren begeleiding door docenten in deze periode, 0 tot 10000.",
                               "Hours of lecturer supervision in this period, 0 to 10000."), "120"),
}


# ---- problems ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong: ``row`` None is a column- or file-level problem, ``column`` None a file-level one."""

    field: str
    reason: Text
    row: int | None = None
    column: str | None = None


class ImportRejected(Exception):
    def __init__(self, status: int, message: Text, problems: Sequence[Problem]) -> None:
        super().__init__(message.en)
        self.status = status
        self.message = message
        self.problems = list(problems)


# in a sheet a missing value is an empty cell
_CELL_DUTCH = {"Missing data for required field.": "Verplicht; de cel is leeg.",
               "Field may not be null.": "Mag niet leeg zijn."}


def bilingual(reason: str) -> Text:
    """A reason from the schema or the domain (English) with its Dutch translation when one is known."""
    return Text(_CELL_DUTCH.get(reason) or to_dutch(reason) or reason, reason)


def _flatten(messages: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(messages, dict):
        out: list[tuple[str, str]] = []
        for key, value in messages.items():
            out += _flatten(value, f"{path}.{key}" if path else str(key))
        return out
    if isinstance(messages, list):
        return [item for m in messages for item in _flatten(m, path)]
    return [(path or "_row", str(messages))]


# ---- the import -------------------------------------------------------------------------------


@dataclass
class ImportOutcome:
    kind: str
    dry_run: bool
    rows: list[int]  # every data row, in file order
    ids: dict[int, str] = field(default_factory=dict)  # row -> id of what it created (none in a dry run)
    details: dict[int, dict[str, Any]] = field(default_factory=dict)  # row -> what the use case reported
    problems: list[Problem] = field(default_factory=list)  # the first MAX_REPORTED_PROBLEMS (dry run)
    problem_count: int = 0

    @property
    def valid(self) -> bool:
        return not self.problems

    @property
    def count(self) -> int:
        """How many objects were (in a dry run: would be) created: every row, or none."""
        return len(self.rows) if self.valid else 0


def check_columns(kind: ImportKind, table: tabular.Table,
                  defaults: Mapping[str, Any] | None = None) -> tuple[dict[str, int], list[Problem]]:
    """Which position holds which column; unknown, repeated and missing required columns are problems (a
    column whose value the upload gives for every row, in ``defaults``, may be left out)."""
    known = {c.name.casefold(): c.name for c in kind.columns}
    allowed = ", ".join(kind.header)
    positions: dict[str, int] = {}
    problems: list[Problem] = []
    for position, written in enumerate(table.header):
        if not written:
            continue  # a column without a name only matters when a row fills it
        name = known.get(written.casefold())
        if name is None:
            problems.append(Problem(written, Text(
                f"Onbekende kolom '{written}'. Toegestaan zijn: {allowed}.",
                f"Unknown column '{written}'. Allowed are: {allowed}."), table.header_row, written))
        elif name in positions:
            problems.append(Problem(name, Text(f"De kolom '{name}' staat er meer dan één keer in.",
                                               f"The column '{name}' appears more than once."),
                                    table.header_row, name))
        else:
            positions[name] = position
    for column in kind.columns:
        if column.required and column.name not in positions and column.name not in (defaults or {}):
            problems.append(Problem(column.name, Text(f"De verplichte kolom '{column.name}' ontbreekt.",
                                                      f"The required column '{column.name}' is missing."),
                                    None, column.name))
    return positions, problems


_MISSING = object()
_INTEGER = re.compile(r"[+-]?[0-9]{1,9}")
_BOOLEANS = {"ja": True, "nee": False, "waar": True, "onwaar": False, "yes": True, "no": False, "true": True,
             "false": False, "j": True, "n": False, "y": True, "1": True, "0": False}


def cell_input(column: Column, value: Any) -> Any:
    """A cell's value as the request schema expects it; what does not convert is passed on unchanged, so
    that the schema's own rule refuses it."""
    if value is None:
        return _MISSING
    if column.kind == "list":
        return tabular.split_list(value) if isinstance(value, str) else [tabular.text_of(value)]
    if column.kind == "int":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INTEGER.fullmatch(value):
            return int(value)
        return value
    if column.kind == "bool":
        if isinstance(value, str):
            return _BOOLEANS.get(value.casefold(), value)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value in (0, 1):
            return bool(value)
        return value
    return tabular.text_of(value)


def _row_input(kind: ImportKind, table: tabular.Table, row: tabular.Row,
               positions: dict[str, int]) -> tuple[dict[str, Any], list[Problem]]:
    problems = [Problem(issue.column or "_row", issue.reason, issue.row, issue.column) for issue in row.issues]
    spoilt = {p.column for p in problems}
    raw: dict[str, Any] = {}
    for column in kind.columns:
        position = positions.get(column.name)
        if position is None or position >= len(row.values) or column.name in spoilt:
            continue
        value = cell_input(column, row.values[position])
        if value is not _MISSING:
            raw[column.name] = value
    used = set(positions.values())
    for position, value in enumerate(row.values):
        if value is None or position in used:
            continue
        written = table.header[position] if position < len(table.header) else ""
        if not written:  # cells under a named but unknown column were reported with the header
            label = tabular.column_label(position)
            problems.append(Problem(label, Text(
                f"Deze cel staat in een kolom zonder naam in de kopregel ({label}).",
                f"This cell is in a column without a name in the header row ({label})."), row.number, label))
    return raw, problems


def _problem_from_path(kind: ImportKind, row: int, path: str, reason: Text) -> Problem:
    head = path.split(".", 1)[0]
    return Problem(path, reason, row, head if head in kind.header else None)


def run_import(session_factory: sessionmaker[Session], emit_all: Callable[[Session, Sequence[Envelope]], None],
               principal: Principal, kind: ImportKind, data: bytes, *, dry_run: bool,
               defaults: Mapping[str, Any] | None = None,
               read: Callable[[bytes, int, Sequence[str]], tabular.Table] = tabular.read_table) -> ImportOutcome:
    """Validate every row; store all of them in one transaction, or none (a problem, or a dry run).
    ``defaults`` gives a value for every row that leaves its cell empty (e.g. the workspace and period chosen
    once for the whole file), so that nobody has to type an internal id into each row. ``read`` reads the file
    (the API reads it in a process of its own: ``adapters.upload_parser``)."""
    try:
        table = read(data, MAX_ROWS, (kind.sheet.nl, kind.sheet.en))
    except tabular.FileRejected as exc:
        raise ImportRejected(exc.status, exc.reason, [Problem("file", exc.reason, exc.row)]) from None
    positions, problems = check_columns(kind, table, defaults)
    if problems:
        raise ImportRejected(422, Text("De kolommen kloppen niet met het sjabloon; er is niets opgeslagen.",
                                       "The columns do not match the template; nothing was stored."), problems)

    # the schema first, outside the transaction: that is most of the work and needs no database
    schema = kind.schema()
    loaded: list[tuple[int, dict[str, Any]]] = []
    for row in table.rows:
        raw, row_problems = _row_input(kind, table, row, positions)
        raw = {**(defaults or {}), **raw}
        spoilt = {p.column for p in row_problems}
        try:
            data_in = schema.load(raw)
        except ValidationError as exc:
            row_problems += [_problem_from_path(kind, row.number, path, bilingual(reason))
                             for path, reason in _flatten(exc.messages)
                             if path.split(".", 1)[0] not in spoilt]
        else:
            if not row_problems:
                loaded.append((row.number, data_in))
        problems += row_problems

    outcome = ImportOutcome(kind.name, dry_run, [row.number for row in table.rows])
    pending: list[Envelope] = []  # written to the outbox only when the rows are stored
    with session_factory() as session:
        keep = _preload(session, principal, loaded)
        try:
            with session.no_autoflush:
                for number, data_in in loaded:
                    try:
                        outcome.ids[number], outcome.details[number] = kind.create(session, pending.append,
                                                                                   principal, data_in)
                    except DomainError as exc:
                        problems.append(_problem_from_path(kind, number, exc.field, bilingual(exc.reason)))
        finally:
            session.info.pop(services.ASSIGNMENT_PLACES, None)
        del keep
        if problems:
            session.rollback()
            if not dry_run:
                raise _rejected(problems)
            outcome.ids.clear()
            outcome.details.clear()
            outcome.problems = _ordered(problems)[:MAX_REPORTED_PROBLEMS]
            outcome.problem_count = len(problems)
            return outcome
        if dry_run:
            session.rollback()
            outcome.ids.clear()  # nothing was created: no ids to hand out
            return outcome
        emit_all(session, pending)  # one statement for all of them
        session.commit()
    return outcome


def _preload(session: Session, principal: Principal, loaded: list[tuple[int, dict[str, Any]]]) -> list[Any]:
    """Load the caller and every workspace the rows name in a few queries: the use cases then find them in
    the session's identity map instead of querying once per row. The same for the assignments the rows name
    as preferences (teams): where each is, for ``register_team``'s check, until the import ends."""
    keep: list[Any] = [session.get(orm.Organisation, principal.organisation_id)]
    ids = sorted({d["workspace_id"] for _, d in loaded if isinstance(d.get("workspace_id"), str)})
    for start in range(0, len(ids), _IN_CHUNK):
        keep += session.execute(sa.select(orm.Workspace).where(
            orm.Workspace.id.in_(ids[start:start + _IN_CHUNK]))).scalars().all()
    wished = sorted({i for _, d in loaded for i in d.get("preferences", ())})
    if wished:
        places: dict[str, tuple[str, str]] = {}
        for start in range(0, len(wished), _IN_CHUNK):
            places.update((row.id, (row.workspace_id, row.period)) for row in session.execute(
                sa.select(orm.Assignment.id, orm.Assignment.workspace_id, orm.Assignment.period).where(
                    orm.Assignment.id.in_(wished[start:start + _IN_CHUNK]))))
        session.info[services.ASSIGNMENT_PLACES] = places
    return keep


def _ordered(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.row or 0))


def _rejected(problems: list[Problem]) -> ImportRejected:
    problems = _ordered(problems)
    rows = len({p.row for p in problems if p.row is not None})
    message = Text(f"{len(problems)} fout(en) in {rows} rij(en); er is niets opgeslagen.",
                   f"{len(problems)} error(s) in {rows} row(s); nothing was stored.")
    if len(problems) > MAX_REPORTED_PROBLEMS:
        message = Text(f"{message.nl} De eerste {MAX_REPORTED_PROBLEMS} staan hieronder.",
                       f"{message.en} The first {MAX_REPORTED_PROBLEMS} are listed.")
    return ImportRejected(422, message, problems[:MAX_REPORTED_PROBLEMS])


# ---- templates and export ---------------------------------------------------------------------


def explanation_rows(kind: ImportKind) -> tuple[list[str], list[list[str]]]:
    """The template's explanation: one row per column, in Dutch and English."""
    header = ["kolom / column", "verplicht / required", "toelichting", "explanation", "voorbeeld / example"]
    rows = [[c.name, "ja / yes" if c.required else "nee / no", c.explanation.nl, c.explanation.en, c.example]
            for c in kind.columns]
    rows.append(["", "",
                 f"Eén rij per {kind.noun.nl}. Lijsten (zoals vaardigheden) schrijft u in één cel, gescheiden "
                 "door ; (a;b;c). Vul alleen waarden in, geen formules. Laat de kopregel ongewijzigd.",
                 f"One row per {kind.noun.en}. Lists (such as skills) go in one cell, separated by ; (a;b;c). "
                 "Enter values only, no formulas. Leave the header row as it is.", ""])
    return header, rows


EXPORT_HEADER = ["assignment_id", "firm_id", "title", "period", "accepted_levels", "min_teams", "max_teams",
                 "status", "team_code", "team_id", "score", "match_id"]


def export_batch(session: Session, principal: Principal, batch_id: str) -> tuple[orm.Batch, list[list[Any]]]:
    """The batch's assignments with their status and their matches in the batch's current run: one row per
    match, one row without a team for an assignment that has none. Other coordinators' batches: NotFound."""
    batch: orm.Batch = services.get_visible(session, services.visible_batches(principal), orm.Batch, batch_id)
    assignments = session.execute(sa.select(orm.Assignment).where(orm.Assignment.batch_id == batch.id)
                                  .order_by(orm.Assignment.title, orm.Assignment.id)).scalars().all()
    matches: dict[str, list[orm.BatchMatch]] = defaultdict(list)
    for match in services.batch_matches(session, batch.id, batch.run_id):
        matches[match.assignment_id].append(match)
    team_ids = sorted({m.team_id for ms in matches.values() for m in ms})
    codes: dict[str, str] = {}
    for start in range(0, len(team_ids), _IN_CHUNK):
        codes.update((row.id, row.code) for row in session.execute(sa.select(orm.Team.id, orm.Team.code).where(
            orm.Team.id.in_(team_ids[start:start + _IN_CHUNK]))))
    rows: list[list[Any]] = []
    for a in assignments:
        base = [a.id, a.firm_id, a.title, a.period, tabular.join_list(a.accepted_levels), a.min_teams,
                a.max_teams, a.status]
        if a.id not in matches:
            rows.append([*base, None, None, None, None])
        for match in matches.get(a.id, []):
            rows.append([*base, codes.get(match.team_id), match.team_id, match.score, match.match_id])
    return batch, rows
