"""Every timestamp an API answers carries its offset (issue 19, item 11): no schema of any service dumps a
moment with marshmallow's plain DateTime, which writes a naive value (SQLite hands them back naive) without
one. The shared UtcDateTime reads a naive value as UTC; AwareDateTime fields are input only."""

from __future__ import annotations

import importlib

from marshmallow import Schema, fields
from werkplaats_shared.fields import UtcDateTime

MODULES = ("intake.entrypoints.api", "matching.entrypoints.api", "scheduling.entrypoints.api")


def _subclasses(cls: type[Schema]) -> set[type[Schema]]:
    found: set[type[Schema]] = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def test_every_dumped_timestamp_field_is_the_shared_utc_one() -> None:
    for module in MODULES:
        importlib.import_module(module)
    ours = [s for s in _subclasses(Schema)
            if s.__module__.split(".")[0] in {"intake", "matching", "scheduling", "werkplaats_shared"}]
    assert len(ours) > 50
    naive = [f"{schema.__module__}.{schema.__name__}.{name}" for schema in ours
             for name, field in schema._declared_fields.items()
             if isinstance(field, fields.DateTime) and not isinstance(field, UtcDateTime) and not field.load_only
             and not isinstance(field, fields.AwareDateTime)]
    assert naive == []
