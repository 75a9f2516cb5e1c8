"""Words for the codes the services use (statuses, themes, kinds, modes, sizes, venues, weekdays, regions)."""

from __future__ import annotations

import csv
from functools import cache
from importlib import resources

from flask import Flask

from .i18n import gettext as _

STATUSES = {
    "submitted": "Submitted, waiting for a round", "in_batch": "In a matching round", "matched": "Team found",
    "unmatched": "No team found yet", "accepted": "Accepted", "declined": "Declined",
    "in_progress": "In progress", "completed": "Completed", "withdrawn": "Withdrawn",
    "referred": "Referred to another kind of help", "draft": "Draft", "running": "Running", "queued": "Queued",
    "failed": "Failed", "infeasible": "No matching possible", "published": "Published",
    "proposed": "Proposed", "unplaced": "No time found yet", "cancelled": "Cancelled", "solved": "Solved",
    "closed": "Closed",
}
THEMES = {"website": "Website", "webshop": "Webshop", "online_marketing": "Online marketing",
          "data_automation": "Data and automation", "cyber_security": "Cyber security", "ai": "Artificial intelligence",
          "digital_roadmap": "Digital roadmap"}
KINDS = {"short_job": "A short job (a few days)", "project": "A project (10 to 20 weeks)",
         "roadmap": "A roadmap or quick scan"}
MODES = {"on_site": "At our premises", "remote": "Remotely", "hybrid": "Partly at our premises, partly remotely"}
SIZES = {"micro": "Micro (2 to 10 employees)", "small": "Small (10 to 50 employees)",
         "medium": "Medium-sized (50 to 250 employees)"}
VENUES = {"on_site": "At our premises", "online": "Online"}
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
REGIONS = {"noord": "North", "midden": "Middle", "zuid": "South"}
STAGES = {"queued": "waiting for a worker", "building": "building the model", "solving": "solving",
          "extracting": "reading the result", "done": "done", "reading": "reading the data",
          "applying": "storing the plan"}
DAY_PARTS = {"morning": "morning", "afternoon": "afternoon", "evening": "evening"}
DECISIONS = {"accepted": "Accept: we want to work with this team", "declined": "Decline: look for another team"}


def _label(table: dict[str, str], code: str | None) -> str:
    if code is None:
        return ""
    return _(table[code]) if code in table else code


def status_label(code: str | None) -> str:
    return _label(STATUSES, code)


def theme_label(code: str | None) -> str:
    return _label(THEMES, code)


def kind_label(code: str | None) -> str:
    return _label(KINDS, code)


def mode_label(code: str | None) -> str:
    return _label(MODES, code)


def size_label(code: str | None) -> str:
    return _label(SIZES, code)


def venue_label(code: str | None) -> str:
    return _label(VENUES, code)


def region_label(code: str | None) -> str:
    return _label(REGIONS, code)


def weekday_label(number: int) -> str:
    return _(WEEKDAYS[number]) if 0 <= number < len(WEEKDAYS) else str(number)


def choices(table: dict[str, str]) -> list[tuple[str, str]]:
    return [(code, _(text)) for code, text in table.items()]


@cache
def municipalities() -> dict[str, str]:
    """CBS municipality code -> name, from the reference list the shared library ships."""
    with resources.files("werkplaats_shared").joinpath("data/municipalities.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    code_key = next(k for k in rows[0] if "code" in k.lower())
    name_key = next(k for k in rows[0] if "name" in k.lower() or "naam" in k.lower())
    return {row[code_key]: row[name_key] for row in sorted(rows, key=lambda r: r[name_key])}


def municipality_label(code: str | None) -> str:
    return municipalities().get(code or "", code or "")


def stage_label(code: str | None) -> str:
    return _label(STAGES, code)


def day_part_label(code: str | None) -> str:
    return _label(DAY_PARTS, code)


def theme_name(code: str, names: dict[str, str]) -> str:
    return names.get(code, code)


def install_labels(app: Flask) -> None:
    app.jinja_env.filters["theme_name"] = theme_name
    app.jinja_env.globals.update(
        status_label=status_label, theme_label=theme_label, kind_label=kind_label, mode_label=mode_label,
        size_label=size_label, venue_label=venue_label, region_label=region_label, weekday_label=weekday_label,
        municipality_label=municipality_label, day_part_label=day_part_label, stage_label=stage_label)
