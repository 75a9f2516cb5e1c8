"""The reach dashboard (the memo's Figure 2, "bereikcijfers"): for one of the coordinator's workspaces and a date
range, the entrepreneurs reached, assignments submitted and served, teams and students placed, workshops given
and their participants, referrals; split by region, level, period, theme and month. The figures come from each
service's ``GET /reach`` (counts only). Each split is a chart (inline SVG, drawn on the server) with a table of
the same numbers under it; ``/coordinator/reach.csv`` downloads those numbers."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from babel.dates import format_date
from flask import Blueprint, Response, render_template, request
from flask_wtf import FlaskForm
from wtforms import DateField
from wtforms.validators import InputRequired, ValidationError

from ..adapters.clients import ApiError
from . import web
from .forms import REQUIRED, SelectField, _l
from .i18n import LOCALES, current_language, nice_period
from .i18n import gettext as _
from .labels import theme_label
from .reach_charts import BarChart, LineChart, bar_chart, line_chart

blueprint = Blueprint("coordinator_reach", __name__, url_prefix="/coordinator")
ROLE = "coordinator"

# (figure, its name on the page), in the memo's order
FIGURES = [
    ("firms_reached", _l("Entrepreneurs reached")), ("assignments_submitted", _l("Assignments submitted")),
    ("assignments_served", _l("Assignments served")), ("teams_placed", _l("Teams placed")),
    ("students_placed", _l("Students placed")), ("workshops_given", _l("Workshops given")),
    ("workshop_participants", _l("Workshop participants")), ("referrals", _l("Referrals")),
    ("teams_registered", _l("Teams registered")), ("students_registered", _l("Students registered")),
]
DIMENSIONS = [("region", _l("Region")), ("level", _l("Level")), ("period", _l("Period")), ("theme", _l("Theme")),
              ("month", _l("Month"))]
LEVEL_ORDER = {"MBO": 0, "HBO": 1, "WO": 2}


class ReachForm(FlaskForm):
    """Which workspace and which days (a GET form: it only chooses what the page shows)."""

    class Meta:
        csrf = False

    workspace = SelectField(_l("Workspace"), validators=[InputRequired(REQUIRED)])
    date_from = DateField(_l("From"), validators=[InputRequired(_l("Enter a date, for example 2027-01-31."))])
    date_to = DateField(_l("To"), validators=[InputRequired(_l("Enter a date, for example 2027-12-31."))])

    def validate_date_to(self, field: DateField) -> None:
        if self.date_from.data and field.data and field.data < self.date_from.data:
            raise ValidationError(_("The end date must not be before the start date."))


@dataclass
class Section:
    dimension: str
    title: str
    values: list[str]  # the labels, as the table and the CSV show them
    columns: list[tuple[str, str]]  # (figure, its name)
    rows: list[list[int]]  # rows[value][column]
    notes: list[str]
    chart: BarChart | LineChart
    kind: str  # bar or line


def _label(dimension: str, value: str, themes: dict[str, str]) -> str:
    if value == "unknown":
        return _("Unknown")
    if dimension == "region" and value == "online":
        return _("Online")
    if dimension == "theme":
        return themes.get(value) or theme_label(value)
    if dimension == "period":
        return nice_period(value)
    if dimension == "month":
        year, month = value.split("-")
        return format_date(date(int(year), int(month), 1), "MMMM yyyy", locale=LOCALES[current_language()])
    return value


def _sort_key(dimension: str, value: str) -> Any:
    if dimension == "level":
        return (LEVEL_ORDER.get(value, 9), value)
    return (value in ("unknown", "online"), value)


def dashboard(answers: list[dict[str, Any]], themes: dict[str, str]) -> tuple[list[tuple[str, str, int]],
                                                                           list[Section]]:
    """The headline figures (figure, name, total) and one section per dimension, from the services' answers."""
    figures = {f["figure"]: f for answer in answers for f in answer["figures"]}
    shown = [(name, str(text)) for name, text in FIGURES if name in figures]
    headline = [(name, text, int(figures[name]["total"])) for name, text in shown]
    sections: list[Section] = []
    for dimension, title in DIMENSIONS:
        columns = [(name, text) for name, text in shown if _has_dimension(figures[name], dimension)]
        counts = {(name, b["value"]): int(b["count"]) for name, _text in columns
                  for b in figures[name]["breakdowns"] if b["dimension"] == dimension}
        values = sorted({value for _name, value in counts}, key=lambda v: _sort_key(dimension, v))
        if not values:
            continue
        rows = [[counts.get((name, value), 0) for name, _text in columns] for value in values]
        labels = [_label(dimension, v, themes) for v in values]
        series = [[row[c] for row in rows] for c in range(len(columns))]
        notes = [_("%(figure)s: one of them can count under several values (an assignment open to MBO and HBO "
                   "counts under both), so these counts can add up to more than the total.", figure=text)
                 for name, text in columns
                 if dimension in figures[name].get("multi_valued", [])]
        chart: BarChart | LineChart = line_chart(labels, series) if dimension == "month" else bar_chart(labels, series)
        sections.append(Section(dimension, str(title), labels, columns, rows, notes, chart,
                                "line" if dimension == "month" else "bar"))
    return headline, sections


# the dimensions each service splits each figure by (a figure with nothing counted has no breakdowns)
SPLITS = {"firms_reached": ("region", "month"), "referrals": ("region", "theme", "month"),
          "teams_registered": ("level", "period", "month"), "students_registered": ("level", "period", "month"),
          "workshops_given": ("region", "theme", "month"), "workshop_participants": ("region", "theme", "month"),
          "assignments_served": ("region", "level", "period", "month"),
          "teams_placed": ("region", "level", "period", "month")}


def _has_dimension(figure: dict[str, Any], dimension: str) -> bool:
    return dimension in SPLITS.get(figure["figure"], ("region", "level", "period", "theme", "month"))


def _own_workspaces() -> list[dict[str, Any]]:
    me = web.person()
    return [w for w in web.intake().get_all("/workspaces") if w.get("organisation_id") == me.organisation_id]


def _form(workspaces: list[dict[str, Any]]) -> ReachForm:
    """The filters as asked; without any, the first workspace, this year up to today."""
    chosen = next((w for w in workspaces if w["id"] == request.args.get("workspace")),
                  workspaces[0] if workspaces else None)
    started = _today().replace(month=1, day=1)
    defaults = {"workspace": chosen["id"] if chosen else "", "date_from": started, "date_to": _today()}
    form = ReachForm(request.args if request.args else None, **defaults)
    form.workspace.choices = [(w["id"], w["name"]) for w in workspaces]
    return form


def _today() -> date:
    return datetime.now(UTC).date()


def _answers(form: ReachForm) -> list[dict[str, Any]]:
    query = {"workspace_id": form.workspace.data, "from": form.date_from.data.isoformat(),  # type: ignore[union-attr]
             "to": form.date_to.data.isoformat()}  # type: ignore[union-attr]
    dates = {"from": query["from"], "to": query["to"]}
    return [web.intake().get("/reach", **query), web.matching().get("/reach", **query),
            web.scheduling().get("/reach", **dates)]


def _themes() -> dict[str, str]:
    language = current_language()
    return {t["code"]: t[f"label_{language}"] for t in web.scheduling().get("/workshop-themes")}


def _load() -> tuple[ReachForm, list[tuple[str, str, int]], list[Section], bool]:
    form = _form(_own_workspaces())
    if not form.workspace.choices or (request.args and not form.validate()):
        return form, [], [], False
    try:
        answers = _answers(form)
    except ApiError as exc:
        if exc.status not in (400, 403, 422):
            raise
        web.show_api_errors(form, exc, {"from": "date_from", "to": "date_to", "workspace_id": "workspace",
                                        "query.from": "date_from", "query.to": "date_to"})
        return form, [], [], False
    headline, sections = dashboard(answers, _themes())
    return form, headline, sections, True


@blueprint.get("/reach")
@web.requires(ROLE)
def reach() -> Any:
    form, headline, sections, ok = _load()
    status = 200 if ok or not request.args else 422
    if not form.workspace.choices:
        status = 200
    return render_template("coordinator/reach/reach.html", form=form, headline=headline, sections=sections,
                           ok=ok, query=request.args.to_dict()), status


@blueprint.get("/reach.csv")
@web.requires(ROLE)
def reach_csv() -> Any:
    form, headline, sections, ok = _load()
    if not ok:
        return render_template("coordinator/reach/reach.html", form=form, headline=[], sections=[], ok=False,
                               query=request.args.to_dict()), 422
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([_("Figure"), _("Split by"), _("Value"), _("Count")])
    for _name, text, total in headline:
        writer.writerow([text, _("Total"), "", total])
    for section in sections:
        for value, row in zip(section.values, section.rows, strict=True):
            for (_name, text), count in zip(section.columns, row, strict=True):
                writer.writerow([text, section.title, value, count])
    name = _("reach") + f"-{form.date_from.data}-{form.date_to.data}.csv"
    return Response(out.getvalue().encode("utf-8"), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
