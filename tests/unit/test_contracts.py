"""Message contracts: validated on the way out and on the way in; unknown fields rejected."""

from __future__ import annotations

import json
from typing import Any

import pytest
from marshmallow import ValidationError
from werkplaats_shared.contracts import (
    CONTRACTS,
    MatchesPublishedV2,
    _flat_lists,
    contract_for,
    make_envelope,
    parse_envelope,
    validated,
)

BATCH = {"batch_id": "b", "workspace_id": "w", "coordinator_id": "c", "period": "P", "policy": "max_fit",
         "auto_publish": True,
         "assignments": [{"assignment_id": "a", "firm_id": "f", "accepted_levels": ["HBO"],
                          "required_skills": ["data"], "nice_to_have_skills": [], "min_teams": 1,
                          "max_teams": 2}],
         "teams": [{"team_id": "t", "institution_id": "i", "level": "HBO", "skills": ["data"]}]}


def test_round_trip_keeps_id_type_version_and_payload() -> None:
    env = make_envelope("batch.submitted", 1, BATCH)
    back = parse_envelope(json.loads(env.to_json()))
    assert (back.message_id, back.type, back.version, back.producer) == (env.message_id, "batch.submitted", 1,
                                                                         "intake")
    assert back.payload == BATCH


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d.update(extra=1), "extra"),
    (lambda d: d["payload"].update(title="Webshop"), "title"),
    (lambda d: d["payload"]["teams"][0].update(student_name="Jan"), "student_name"),
    (lambda d: d["payload"]["assignments"][0].update(accepted_levels=["PhD"]), "accepted_levels"),
    (lambda d: d["payload"].pop("teams"), "teams"),
    (lambda d: d.update(version=99), "type"),
    (lambda d: d.update(type="batch.exploded"), "type"),
])
def test_invalid_messages_are_rejected_naming_the_field(mutate, field) -> None:  # type: ignore[no-untyped-def]
    raw = make_envelope("batch.submitted", 1, BATCH).to_dict()
    mutate(raw)
    with pytest.raises(ValidationError) as info:
        parse_envelope(raw)
    assert field in json.dumps(info.value.messages)


def test_outgoing_payload_is_validated_too() -> None:
    with pytest.raises(ValidationError):
        make_envelope("batch.submitted", 1, {**BATCH, "contact_email": "someone@example.org"})


# The names a firm reads in its notices (issue 16): organisations' names and the title a firm gave its
# assignment, never a person's name, address or number. Only batch.announced v2 carries them.
ORGANISATION_NAMES = {("batch.announced", 2): {"title", "firm_name", "institution_name", "workspace_name",
                                                "coordinator_name"}}


def test_no_contract_field_can_carry_personal_data() -> None:
    personal = ("name", "email", "phone", "address", "title", "description")
    for contract in CONTRACTS:
        allowed = ORGANISATION_NAMES.get((contract.type, contract.version), set())
        for field_name in _field_names(contract.schema()):
            if field_name in allowed:
                continue
            assert not any(word in field_name for word in personal), (contract.type, field_name)


def test_organisation_names_travel_in_one_contract_only_and_a_person_field_is_refused_there() -> None:
    v2 = contract_for("batch.announced", 2).schema()
    assert ORGANISATION_NAMES[("batch.announced", 2)] <= set(_field_names(v2))
    with pytest.raises(ValidationError):
        v2.load({"batch_id": "b", "workspace_id": "w", "coordinator_id": "c", "workspace_name": "Werkplaats MRA",
                 "coordinator_name": "Gemeente Amsterdam", "period": {"code": "2027-S1", "starts_on": None,
                                                                      "ends_on": None},
                 "assignments": [], "teams": [{"team_id": "t", "institution_id": "i", "code": "HVA-1",
                                               "institution_name": "HvA", "level": "HBO", "skills": [],
                                               "student_name": "Jan"}]})


def _field_names(schema) -> list[str]:  # type: ignore[no-untyped-def]
    names = []
    for name, field in schema.fields.items():
        names.append(name)
        inner = getattr(field, "inner", None)
        nested = getattr(inner, "schema", None) or getattr(field, "schema", None)
        if nested is not None:
            names += _field_names(nested)
    return names


# ---- the typed check of long lists of flat records (contracts.validated) --------------------------------

def _publication(matches: int, version: int = 2) -> dict:  # type: ignore[type-arg]
    rows = [{"match_id": f"m{k}", "assignment_id": f"a{k // 2}", "team_id": f"t{k}", "firm_id": f"f{k // 5}",
             "institution_id": f"i{k % 7}", "score": 10.0 + k / 8} for k in range(matches)]
    if version == 2:
        rows = [{**row, "previous_match_id": None if k % 3 else f"old{k}"} for k, row in enumerate(rows)]
    payload = {"run_id": "r", "batch_id": "b", "workspace_id": "w", "coordinator_id": "c", "period": "2027-S1",
               "matches": rows, "unmatched_assignment_ids": ["a9", "a8"]}
    return {**payload, "supersedes_run_id": None} if version == 2 else payload


# One valid payload per contract that has a list the typed check takes (a new such contract needs one here).
FLAT_LIST_EXAMPLES = {
    ("matches.published", 1): _publication(6, version=1),
    ("matches.published", 2): _publication(6),
    ("batch.announced", 1): {"batch_id": "b", "workspace_id": "w", "coordinator_id": "c",
                             "assignments": [{"assignment_id": "a1", "firm_id": "f1"},
                                             {"assignment_id": "a2", "firm_id": "f1"}],
                             "teams": [{"team_id": "t1", "institution_id": "i1"}]},
    ("firm.referred", 1): {"referral_id": "x", "firm_id": "f", "assignment_id": None, "from_workspace_id": "w",
                           "coordinator_id": "c", "scheme_codes": ["s"], "reason": "outside_working_area",
                           "schemes": [{"code": "s", "label_nl": "Regeling", "label_en": "Scheme",
                                        "url": "https://example.org/s"}]},
    ("batch.announced", 2): {"batch_id": "b", "workspace_id": "w", "coordinator_id": "c",
                             "workspace_name": "Werkplaats", "coordinator_name": "Regio",
                             "period": {"code": "2027-S1", "starts_on": "2027-02-01", "ends_on": None},
                             "assignments": [{"assignment_id": "a1", "firm_id": "f1", "title": "Webwinkel",
                                              "firm_name": "Bakkerij"},
                                             {"assignment_id": "a2", "firm_id": "f1", "title": "Scan",
                                              "firm_name": "Bakkerij"}],
                             "teams": [{"team_id": "t1", "institution_id": "i1", "code": "T-01",
                                        "institution_name": "Hogeschool", "level": "HBO", "skills": ["python", "ux"]},
                                       {"team_id": "t2", "institution_id": "i1", "code": "T-02",
                                        "institution_name": "Hogeschool", "level": "WO", "skills": []}]},
}

_SNAPSHOT_ASSIGNMENTS_V1 = [
    {"assignment_id": "a1", "firm_id": "f1", "accepted_levels": ["HBO", "WO"], "required_skills": ["python"],
     "nice_to_have_skills": [], "min_teams": 1, "max_teams": 2},
    {"assignment_id": "a2", "firm_id": "f2", "accepted_levels": ["MBO"], "required_skills": [],
     "nice_to_have_skills": ["ux"], "min_teams": 1, "max_teams": 1}]
_SNAPSHOT_TEAMS_V1 = [{"team_id": "t1", "institution_id": "i1", "level": "HBO", "skills": ["python", "ux"]},
                      {"team_id": "t2", "institution_id": "i2", "level": "MBO", "skills": []}]
_SNAPSHOT_V2 = {
    "batch_id": "b", "workspace_id": "w", "coordinator_id": "c", "period": "2027-S1", "policy": "stable",
    "auto_publish": True, "working_area": ["GM0363", "GM0344"],
    "assignments": [{**_SNAPSHOT_ASSIGNMENTS_V1[0], "period": "2027-S1", "mode": "hybrid", "municipality": "GM0363",
                     "latitude": 52.37, "longitude": 4.89, "region": "Noord-Holland", "priority": 3,
                     "supervision_hours": 20, "preferred_institutions": ["i1"], "preferred_levels": ["WO", "HBO"]},
                    {**_SNAPSHOT_ASSIGNMENTS_V1[1], "period": "2027-S1", "mode": "on_site", "municipality": None,
                     "latitude": None, "longitude": None, "region": None, "priority": 0, "supervision_hours": 0,
                     "preferred_institutions": [], "preferred_levels": []}],
    "teams": [{**_SNAPSHOT_TEAMS_V1[0], "periods": ["2027-S1"], "municipality": "GM0344", "latitude": 52.09,
               "longitude": 5.12, "region": "Utrecht", "travel_limit_km": 25, "remote_allowed": True,
               "preferences": ["a1", "a2"]},
              {**_SNAPSHOT_TEAMS_V1[1], "periods": ["2027-S1", "2027-S2"], "municipality": None, "latitude": None,
               "longitude": None, "region": None, "travel_limit_km": None, "remote_allowed": False,
               "preferences": []}],
    "capacities": [{"institution_id": "i1", "period": "2027-S1", "level": "HBO", "teams": 4, "supervision_hours": 120},
                   {"institution_id": "i2", "period": "2027-S1", "level": "MBO", "teams": 0, "supervision_hours": 0}],
    "firm_caps": [{"firm_id": "f1", "max_teams": 2}, {"firm_id": "f2", "max_teams": 0}],
    "fairness_floors": [{"dimension": "region", "value": "Utrecht", "min_share": 0.5},
                        {"dimension": "level", "value": "MBO", "min_share": 1.0}],
}
FLAT_LIST_EXAMPLES.update({
    ("batch.submitted", 1): {"batch_id": "b", "workspace_id": "w", "coordinator_id": "c", "period": "2027-S1",
                             "policy": "max_fit", "auto_publish": False, "assignments": _SNAPSHOT_ASSIGNMENTS_V1,
                             "teams": _SNAPSHOT_TEAMS_V1},
    ("batch.submitted", 2): _SNAPSHOT_V2,
    ("batch.submitted", 3): {**_SNAPSHOT_V2, "workspace_ids": ["w", "w2"]},
})


class _Text(str):
    pass


# Values that are not plain str / finite float, and plain ones of the other type: each record field gets each.
ODD_VALUES: tuple[Any, ...] = (None, 1, 0, True, 1.5, "text", "", b"bytes", _Text("sub"), float("nan"), float("inf"),
              -float("inf"), [], {}, ["x"], 10**400,
              # beside the validators of the snapshots' fields: levels, ranges, lengths, lists of odd items
              -1, 11, 95.0, -200.0, "HBO", "remote", ["HBO"], ["HBO", "HBO", "WO", "MBO"], [1], [None], [""],
              [_Text("sub")], ("x",), ["x"] * 11, ["x"] * 31, ["x" * 61], "x" * 201, False)


def _marshmallow(schema_class, payload):  # type: ignore[no-untyped-def]
    """What the schema alone makes of a payload: (dumped, None) or (None, the error messages)."""
    try:
        return schema_class().dump(schema_class().load(payload)), None
    except ValidationError as exc:
        return None, exc.messages


def _typed(schema_class, payload):  # type: ignore[no-untyped-def]
    try:
        return validated(schema_class, payload), None
    except ValidationError as exc:
        return None, exc.messages


def _mutations(payload):  # type: ignore[no-untyped-def]
    """The payload with one thing changed in one of its lists of records (or the list itself)."""
    for name, value in payload.items():
        if not (isinstance(value, list) and value and isinstance(value[0], dict)):
            continue
        odd_lists: tuple[Any, ...] = (None, "x", (), {"0": value[0]}, [value[0], "x"], [[value[0]]], [], value * 3)
        for odd_list in odd_lists:
            yield {**payload, name: odd_list}
        for k in {0, len(value) - 1}:
            record = value[k]
            for key in record:
                yield {**payload, name: [*value[:k], {r: v for r, v in record.items() if r != key}, *value[k + 1:]]}
                for odd in ODD_VALUES:
                    yield {**payload, name: [*value[:k], {**record, key: odd}, *value[k + 1:]]}
            yield {**payload, name: [*value[:k], {**record, "student_name": "Jan"}, *value[k + 1:]]}
            yield {**payload, name: [*value[:k], [*record.items()], *value[k + 1:]]}
    yield {key: v for key, v in payload.items() if key != "period"}


def test_the_typed_check_covers_exactly_the_contracts_with_an_example() -> None:
    covered = {(c.type, c.version) for c in CONTRACTS if _flat_lists(c.schema)}
    assert covered == set(FLAT_LIST_EXAMPLES)
    assert set(_flat_lists(contract_for("matches.published", 2).schema)) == {"matches"}


@pytest.mark.parametrize("key", sorted(FLAT_LIST_EXAMPLES))
def test_the_typed_check_accepts_and_refuses_exactly_what_the_schema_does(key) -> None:  # type: ignore[no-untyped-def]
    schema_class = contract_for(*key).schema
    example = FLAT_LIST_EXAMPLES[key]
    assert _typed(schema_class, example) == _marshmallow(schema_class, example) != (None, None)
    assert _typed(schema_class, example)[1] is None
    mutated = list(_mutations(example))
    assert len(mutated) > 50
    refused = 0
    for payload in mutated:
        typed, plain = _typed(schema_class, payload), _marshmallow(schema_class, payload)
        assert typed == plain, payload
        if typed[0] is not None:  # accepted: the same values of the same types (1 loads as 1.0)
            assert json.dumps(typed[0], sort_keys=True) == json.dumps(plain[0], sort_keys=True)
        refused += typed[1] is not None
    assert refused > len(mutated) // 2


def test_a_publication_with_one_bad_match_among_thousands_is_refused_naming_it() -> None:
    payload = _publication(6139)
    payload["matches"][4000] = {**payload["matches"][4000], "score": "12.5 points"}
    with pytest.raises(ValidationError) as info:
        make_envelope("matches.published", 2, payload)
    assert info.value.messages == {"matches": {4000: {"score": ["Not a valid number."]}}}
    payload["matches"][4000] = {k: v for k, v in payload["matches"][4000].items() if k != "team_id"}
    with pytest.raises(ValidationError) as info:
        make_envelope("matches.published", 2, payload)
    assert info.value.messages == {"matches": {4000: {"team_id": ["Missing data for required field."],
                                                      "score": ["Not a valid number."]}}}
    payload["matches"][4000] = {**_publication(6139)["matches"][4000], "student_name": "Jan"}
    with pytest.raises(ValidationError) as info:
        make_envelope("matches.published", 2, payload)
    assert info.value.messages == {"matches": {4000: {"student_name": ["Unknown field."]}}}


def test_a_valid_publication_travels_as_the_schema_dumps_it() -> None:
    payload = _publication(3000)
    payload["matches"][7] = {**payload["matches"][7], "score": 12}  # an int score: loaded as the float 12.0
    envelope = make_envelope("matches.published", 2, payload)
    assert envelope.payload == _marshmallow(MatchesPublishedV2, payload)[0]
    assert envelope.payload["matches"][7]["score"] == 12.0 and type(envelope.payload["matches"][7]["score"]) is float
    assert parse_envelope(json.loads(envelope.to_json())).payload == envelope.payload

def test_every_payload_field_is_json_native_so_an_outgoing_payload_is_what_loading_gives() -> None:
    """make_envelope keeps what loading gives (no dump): true only while every field of every payload, at every
    nesting level, is one whose loaded value is its JSON value. A field of another kind (a date, a UUID, a
    decimal) must make make_envelope dump again."""
    from marshmallow import Schema, fields

    native = (fields.String, fields.Integer, fields.Float, fields.Boolean)
    odd: list[str] = []

    def walk(schema: Schema, path: str) -> None:
        for name, f in schema.fields.items():
            inner: fields.Field[Any] = f
            while isinstance(inner, fields.List):
                inner = inner.inner
            if isinstance(inner, fields.Nested):
                walk(inner.schema, f"{path}.{name}")
            elif not isinstance(inner, native) or inner.data_key or inner.attribute:
                odd.append(f"{path}.{name}: {type(inner).__name__}")

    for contract in CONTRACTS:
        walk(contract.schema(), f"{contract.type} v{contract.version}")
    assert odd == []
    # and so a payload comes out as a dump would give it
    payload = {"batch_id": "b1", "closed_at": "2030-01-01T00:00:00+00:00"}
    schema = contract_for("batch.closed", 1).schema()
    assert make_envelope("batch.closed", 1, payload).payload == schema.dump(schema.load(payload))
