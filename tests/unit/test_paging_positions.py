"""A list's position (``next_after``) travels in a URL and comes back as the same key; anything else is
refused."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from werkplaats_shared.http import decode_cursor, encode_cursor


@pytest.mark.parametrize("key", [
    [datetime(2030, 1, 1, 12, 30, 5, 123456, tzinfo=UTC), "3f1c0b7e-uuid"],
    [datetime(2030, 6, 1, 8, 0, tzinfo=timezone(timedelta(hours=2))), "b"],
    [date(2031, 1, 2), "m-1"],
    ["Bakkerij Jansen BV", "x" * 36],
    [42, 0.5, True],
])
def test_a_position_comes_back_as_the_key_it_was_made_of(key: list[object]) -> None:
    cursor = encode_cursor(key)
    assert cursor.replace("-", "").replace("_", "").isalnum()  # nothing a URL must escape
    assert decode_cursor(cursor) == key
    assert [type(v) for v in decode_cursor(cursor)] == [type(v) for v in key]


@pytest.mark.parametrize("cursor", ["", "%%%", "W10", "e30", "WyJhIl0x", "W3sidCI6ICJub29uIn1d", "W3sieCI6MX1d"])
def test_anything_else_is_no_position(cursor: str) -> None:
    with pytest.raises(ValueError):
        decode_cursor(cursor)
