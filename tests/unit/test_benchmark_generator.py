"""The benchmark's instance generator: deterministic, valid v2 snapshots of the promised shape."""

from __future__ import annotations

from collections import Counter

import pytest
from matching.domain.model import Problem, eligible_pairs
from werkplaats_shared import geo
from werkplaats_shared.contracts import BatchSubmittedV2

from benchmarks.generator import (
    LEVELS,
    SKILLS,
    generate,
    pairs_by_contract_rules,
    size_of,
)


def test_same_seed_gives_the_identical_snapshot_and_another_seed_does_not() -> None:
    first = generate(300, flavour="side", seed=5)
    assert generate(300, flavour="side", seed=5) == first
    assert generate(300, flavour="side", seed=6) != first


@pytest.mark.parametrize("flavour", ["network", "side"])
def test_snapshot_validates_against_batch_submitted_v2(flavour: str) -> None:
    snapshot = generate(400, flavour=flavour, seed=2)
    assert BatchSubmittedV2().load(snapshot) == snapshot


def test_shape_levels_skills_places_and_binding_capacity() -> None:
    snapshot = generate(2_000, seed=1)
    teams, assignments = snapshot["teams"], snapshot["assignments"]
    assert len(teams) == 2_000 and len(assignments) == 1_000
    levels = Counter(t["level"] for t in teams)
    assert set(levels) == set(LEVELS)
    assert levels["MBO"] > levels["HBO"] > levels["WO"]
    assert {s for t in teams for s in t["skills"]} <= set(SKILLS)
    assert {s for a in assignments for s in a["required_skills"] + a["nice_to_have_skills"]} <= set(SKILLS)
    for item in (*teams, *assignments):
        place = geo.municipality(item["municipality"])
        assert place is not None
        assert (item["region"], item["latitude"], item["longitude"]) == (place.province, place.latitude,
                                                                         place.longitude)
    assert len({a["municipality"] for a in assignments}) > 30
    assert {a["mode"] for a in assignments} == {"on_site", "hybrid", "remote"}
    assert any(t["preferences"] for t in teams) and any(a["preferred_institutions"] for a in assignments)
    registered = Counter((t["institution_id"], t["periods"][0], t["level"]) for t in teams)
    capacities = {(c["institution_id"], c["period"], c["level"]): c["teams"] for c in snapshot["capacities"]}
    assert set(capacities) == set(registered)
    assert all(capacities[k] <= registered[k] for k in registered)
    assert sum(capacities.values()) < len(teams)


def test_network_flavour_has_only_network_rules_and_side_flavour_adds_the_others() -> None:
    network, side = generate(500, flavour="network"), generate(500, flavour="side")
    assert all(a["min_teams"] == 1 and a["supervision_hours"] == 0 for a in network["assignments"])
    assert network["fairness_floors"] == [] and network["firm_caps"] == []
    assert any(a["min_teams"] == 2 for a in side["assignments"])
    assert all(a["supervision_hours"] > 0 for a in side["assignments"])
    assert side["fairness_floors"] and side["firm_caps"]


def test_the_generators_pair_count_is_the_optimisers_eligibility() -> None:
    snapshot = generate(600, seed=4)
    assert pairs_by_contract_rules(snapshot) == len(eligible_pairs(Problem.from_snapshot(snapshot)))


def test_travel_limits_are_calibrated_towards_the_requested_pairs_per_team() -> None:
    sparse = generate(1_000, seed=3, pairs_per_team=4)
    dense = generate(1_000, seed=3, pairs_per_team=8)
    assert 3 <= pairs_by_contract_rules(sparse) / 1_000 <= 5
    assert 7 <= pairs_by_contract_rules(dense) / 1_000 <= 9
    assert sum(t["travel_limit_km"] for t in sparse["teams"]) < sum(t["travel_limit_km"] for t in dense["teams"])


def test_sizes_and_bad_input_are_named() -> None:
    assert [size_of(s) for s in ("1k", "10k", "50k", "250")] == [1_000, 10_000, 50_000, 250]
    with pytest.raises(ValueError, match="size '2x'"):
        size_of("2x")
    with pytest.raises(ValueError, match="flavour 'dense'"):
        generate(100, flavour="dense")
