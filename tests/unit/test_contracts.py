"""Message contracts: validated on the way out and on the way in; unknown fields rejected."""

from __future__ import annotations

import json
from typing import Any

import pytest
from marshmallow import ValidationError
from werkplaats_shared.contracts import CONTRACTS, contract_for, make_envelope, parse_envelope

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
