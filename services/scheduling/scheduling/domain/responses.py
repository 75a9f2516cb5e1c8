"""Rules for an entrepreneur's answer to a match: accepted or declined, once, through a signed link
that expires."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

DECISIONS = ("accepted", "declined")
# How long the accept/decline link in a match notice stays valid, counted from sending.
LINK_VALIDITY = timedelta(days=14)
# Days a firm has to answer a match notice, counted from sending; an unanswered match then counts as
# declined. Never longer than the link stays valid.
DEFAULT_ANSWER_DAYS = 10
MAX_ANSWER_DAYS = LINK_VALIDITY.days


class LinkInvalid(Exception):
    """The link was not issued by us (forged, altered or truncated)."""


class LinkExpired(Exception):
    """The link was issued by us but is older than LINK_VALIDITY."""

    def __init__(self, notice_id: str, match_id: str) -> None:
        super().__init__("link expired")
        self.notice_id, self.match_id = notice_id, match_id


class AlreadyAnswered(Exception):
    def __init__(self, decision: str, responded_at: datetime) -> None:
        super().__init__(f"already answered: {decision}")
        self.decision, self.responded_at = decision, responded_at


@dataclass(frozen=True)
class LinkTarget:
    """What a signed link points at: one match in one notice."""

    notice_id: str
    match_id: str


def responded_payload(notice: Any, match: dict[str, Any], decision: str, at: datetime) -> dict[str, Any]:
    """The ``match.responded`` v1 payload: ids and the answer only, never who clicked or from where."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {', '.join(DECISIONS)}")
    return {
        "match_id": match["match_id"], "run_id": notice.run_id, "batch_id": notice.batch_id,
        "assignment_id": match["assignment_id"], "team_id": match["team_id"], "firm_id": notice.firm_id,
        "response": decision, "responded_at": at.isoformat(),
    }
