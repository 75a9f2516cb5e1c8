"""A run's match ids, made in one go for thousands of matches (``services.new_ids``): each is a random
version-4 UUID in its usual text form, as ``str(uuid.uuid4())`` gives them, never one twice."""

from __future__ import annotations

import uuid

from matching.service_layer.services import new_ids


def test_match_ids_are_random_version_4_uuids_in_their_usual_text_form() -> None:
    ids = new_ids(20_000)
    assert len(ids) == 20_000 and len(set(ids)) == 20_000
    for text in ids[:2_000]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    # every digit that is not fixed by the version and the variant takes every value, the variant's digit
    # each of its four
    free = [i for i in range(36) if i not in (8, 13, 14, 18, 19, 23)]
    for i in free:
        assert {text[i] for text in ids} == set("0123456789abcdef"), i
    assert {text[19] for text in ids} == set("89ab") and {text[14] for text in ids} == {"4"}
    assert set(new_ids(50)).isdisjoint(ids) and new_ids(0) == []
