"""Reach figures (the memo's "bereikcijfers"): what a workspace reached in a date range, as counts split by
dimension. Each service counts what it owns (intake: firms, assignments, teams, referrals, students placed;
matching: assignments served, teams placed; scheduling: workshops and their participants) with ``figure``
below, and answers ``GET /reach`` with ``ReachOut``: counts only, never a name, an e-mail or an id of what
was counted.

A figure counts each thing once: ``Counted.key`` identifies it (a firm, a team, ...), so a firm with three
assignments is one firm reached. A thing with several values of one dimension (an assignment that accepts MBO
and HBO, a firm at workshops of two themes) counts once under each value; the figure's total counts it once,
so a dimension's counts may add up to more than the total (``multi_valued`` says where)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

DIMENSIONS = ("region", "level", "period", "theme", "month")
UNKNOWN = "unknown"  # a value the data does not say (a firm without a municipality)
ONLINE = "online"  # a workshop held online has no region
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(2999, 12, 31)  # the days a range may span


@dataclass(frozen=True)
class Counted:
    """One thing to count: its identity, the day it counts on, its weight (a team counts its students) and its
    values per dimension (the month is added from ``on``)."""

    key: str
    on: date
    dims: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    weight: int = 1


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def figure(name: str, items: Iterable[Counted], dimensions: tuple[str, ...]) -> dict[str, Any]:
    """The figure ``name``: its total and its counts per value of each dimension, each key counted once. A key
    met several times counts on its earliest day (a firm reached in March and again in May is reached in March)
    and under every value it was met with (a firm seated in an AI and a webshop workshop counts under both
    themes), once in the total."""
    first: dict[str, date] = {}
    weight: dict[str, int] = {}
    values: dict[str, dict[str, set[str]]] = {}
    for item in items:
        if item.key not in first or item.on < first[item.key]:
            first[item.key] = item.on
        weight[item.key] = max(weight.get(item.key, 0), item.weight)
        met = values.setdefault(item.key, {})
        for dimension in dimensions:
            met.setdefault(dimension, set()).update(item.dims.get(dimension) or ())
    breakdowns: list[dict[str, Any]] = []
    multi: list[str] = []
    for dimension in dimensions:
        counts: dict[str, int] = {}
        several = False
        for key, on in first.items():
            found = {month_of(on)} if dimension == "month" else (values[key][dimension] or {UNKNOWN})
            several = several or len(found) > 1
            for value in found:
                counts[value] = counts.get(value, 0) + weight[key]
        breakdowns += [{"dimension": dimension, "value": value, "count": counts[value]} for value in sorted(counts)]
        if several:
            multi.append(dimension)
    return {"figure": name, "total": sum(weight.values()), "breakdowns": breakdowns, "multi_valued": multi}


class DateRange(Schema):
    """``from`` and ``to``: the first and last day counted (``to`` not before ``from``)."""

    from_ = fields.Date(required=True, data_key="from", validate=validate.Range(min=FIRST_DAY, max=LAST_DAY))
    to = fields.Date(required=True, validate=validate.Range(min=FIRST_DAY, max=LAST_DAY))

    @validates_schema
    def _range(self, data: dict[str, Any], **_kw: Any) -> None:
        if "from_" in data and "to" in data and data["from_"] > data["to"]:
            raise ValidationError("must not be before from", "to")


class ReachQuery(DateRange):
    """``workspace_id``: one of the caller's workspaces."""

    workspace_id = fields.String(required=True, validate=validate.Length(min=1, max=36))


class BreakdownOut(Schema):
    dimension = fields.String(required=True, validate=validate.OneOf(DIMENSIONS))
    value = fields.String(required=True)
    count = fields.Integer(required=True)


class FigureOut(Schema):
    figure = fields.String(required=True)
    total = fields.Integer(required=True)
    breakdowns = fields.List(fields.Nested(BreakdownOut), required=True)
    multi_valued = fields.List(fields.String(), required=True,
                               metadata={"description": "dimensions where one thing counts under several values"})


class ReachOut(Schema):
    workspace_id = fields.String(dump_only=True, allow_none=True,
                                 metadata={"description": "none where the figures are the coordinator's own, "
                                                          "of all its workspaces (workshops)"})
    from_ = fields.Date(dump_only=True, data_key="from")
    to = fields.Date(dump_only=True)
    figures = fields.List(fields.Nested(FigureOut), dump_only=True)
