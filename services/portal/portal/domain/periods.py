"""How a period code reads to a person: ``2027-S1`` is "semester 1, 2027", not an internal code.

Workspaces name their periods by code (``<year>-S<n>`` semesters, ``<year>-Q<n>`` quarters, ``<year>-B<n>`` or
``<year>-P<n>`` blocks/periods); a code in no known form is shown as it is.
"""

from __future__ import annotations

import re

_FORM = re.compile(r"^(?P<year>\d{4})-(?P<kind>[SQBP])(?P<number>\d{1,2})$")
_WORDS = {
    "nl": {"S": "semester", "Q": "kwartaal", "B": "blok", "P": "periode"},
    "en": {"S": "semester", "Q": "quarter", "B": "block", "P": "period"},
}


def period_label(code: str, language: str) -> str:
    found = _FORM.match(code or "")
    if found is None:
        return code
    word = _WORDS.get(language, _WORDS["nl"])[found["kind"]]
    return f"{word} {int(found['number'])}, {found['year']}"
