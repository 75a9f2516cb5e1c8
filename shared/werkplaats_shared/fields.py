"""Marshmallow fields every service's API uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import fields


class UtcDateTime(fields.DateTime):
    """A stored moment, always with its offset: a naive value (SQLite hands timestamps back without
    one) is UTC; an aware one (a kickoff in local time) keeps its own offset."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | float | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return super()._serialize(value, attr, obj, **kwargs)
