"""The benchmark's baselines solve the same instance as the optimiser and find the same optimum."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
from matching.domain.model import Pair, Problem, violations
from matching.solver import paths, pulp_model

from benchmarks import run
from benchmarks.baselines import agree, optimiser_pairs, solve_min_cost_flow, solve_pulp_cbc
from benchmarks.generator import generate


def _violations(snapshot: dict[str, Any], matches: tuple[tuple[str, str], ...]) -> list[str]:
    return violations(Problem.from_snapshot(snapshot), [Pair(*m) for m in matches])


def test_optimiser_cbc_baseline_and_min_cost_flow_agree_on_a_network_instance() -> None:
    snapshot = generate(400, flavour="network", seed=11)
    pairs = optimiser_pairs(snapshot)
    flow = solve_min_cost_flow(snapshot, pairs)
    cbc = solve_pulp_cbc(snapshot, pairs, time_limit=60)
    solution = paths.solve(Problem.from_snapshot(snapshot), "highs", 60, policy="max_fit")
    assert (flow.status, cbc.status, solution.status) == ("optimal", "optimal", "optimal")
    assert flow.exact
    assert flow.objective > 0
    assert agree(flow.objective, solution.objective) and agree(cbc.objective, solution.objective)
    assert _violations(snapshot, flow.matches) == []
    assert _violations(snapshot, cbc.matches) == []


def test_min_cost_flow_respects_binding_institution_capacity() -> None:
    snapshot = generate(400, flavour="network", seed=11)
    pairs = optimiser_pairs(snapshot)
    unlimited = dict(snapshot, capacities=[])
    capped = solve_min_cost_flow(snapshot, pairs)
    free = solve_min_cost_flow(unlimited, pairs)
    assert capped.objective < free.objective
    assert _violations(snapshot, capped.matches) == []
    assert _violations(snapshot, free.matches) != []


def test_on_the_side_flavour_the_flow_is_an_upper_bound_and_cbc_meets_every_side_rule() -> None:
    snapshot = generate(200, flavour="side", seed=3)
    pairs = optimiser_pairs(snapshot)
    flow = solve_min_cost_flow(snapshot, pairs)
    cbc = solve_pulp_cbc(snapshot, pairs, time_limit=60)
    assert not flow.exact
    assert cbc.status == "optimal"
    assert _violations(snapshot, cbc.matches) == []
    assert flow.objective >= cbc.objective - 1e-6


def test_instrumentation_times_the_plain_paths_stages_and_restores_them() -> None:
    original = pulp_model.__dict__["eligible_pairs"]
    timings = run.Timings()
    snapshot = generate(100, seed=2)
    with run.instrumented(timings) as hooks:
        assert pulp_model.__dict__["eligible_pairs"] is not original
        paths.solve(Problem.from_snapshot(snapshot), "cbc", 30)
    assert pulp_model.__dict__["eligible_pairs"] is original
    assert "matching.solver.pulp_model.eligible_pairs" in hooks
    assert timings.calls["eligibility"] >= 1 and timings.seconds["eligibility"] > 0


def test_the_optimisers_own_time_split_is_used_when_it_reports_one(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.pickle"
    path.write_bytes(pickle.dumps(generate(100, seed=2)))
    measured = run.measure_optimiser(str(path), "highs", 30)
    assert measured["status"] == "optimal"
    if measured["split_source"] == "the optimiser's own Solution.timings":
        assert set(measured["stages"]) <= set(run.OWN_STAGES.values())
        assert {"eligibility", "model build", "solve"} <= set(measured["stages"])
    else:
        assert measured["split_source"].startswith("hooks wrapped from outside")
    assert measured["peak_mib"] >= measured["input_mib"] > 0


def test_benchmark_prints_one_table_with_agreeing_objectives(capsys: pytest.CaptureFixture[str]) -> None:
    assert run.main(["--sizes", "60", "--skip-baseline", "--time-limit", "30"]) == 0
    out = capsys.readouterr().out
    assert "== 60: 60 teams x 30 assignments, flavour network ==" in out
    assert "objectives" in out and "agree (1e-6 relative)" in out
    assert "machine:" in out and "python 3." in out


def test_repeated_runs_show_the_median_run_and_every_runs_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert run.main(["--sizes", "60", "--skip-baseline", "--time-limit", "30", "--repeat", "3"]) == 0
    out = capsys.readouterr().out
    spread = next(line for line in out.splitlines() if line.startswith("optimiser over 3 runs: end to end "))
    times = [float(t) for t in spread.split("end to end ")[1].split(" s")[0].split(", ")]
    ratios = [float(x) for x in spread.split("Python overhead / solve ")[1].rstrip(" x").split(", ")]
    assert len(times) == len(ratios) == 3 and times == sorted(times) and ratios == sorted(ratios)
    shown = float(next(line for line in out.splitlines() if line.strip().startswith("end to end")).split()[3])
    assert shown == pytest.approx(times[1], abs=0.006)  # the table is the median run's


def test_benchmark_rejects_an_unknown_size() -> None:
    with pytest.raises(SystemExit) as stopped:
        run.main(["--sizes", "huge"])
    assert stopped.value.code == 2


def _measured(objective: float, status: str = "optimal", exact: bool = True) -> dict[str, Any]:
    return {"status": status, "objective": objective, "gap": None, "snapshot_seconds": 0.1, "build_seconds": 1.0,
            "solve_seconds": 2.0, "total_seconds": 3.0, "cpu_seconds": 3.0, "stages": {"solve": 1.5},
            "split_source": "test", "peak_mib": 100.0, "input_mib": 50.0, "pairs": 10, "exact": exact}


def test_the_verdict_names_a_difference_or_a_missing_solution_instead_of_agreeing() -> None:
    def verdict(opt: dict[str, Any], mcf: dict[str, Any], cbc: dict[str, Any] | None) -> str:
        return next(line for line in run.table("t", 20, 10, "network", opt, mcf, cbc) if line.startswith("objectives"))

    assert "agree" in verdict(_measured(100.0), _measured(100.0), _measured(100.0))
    assert "DIFFER" in verdict(_measured(99.0), _measured(100.0), _measured(100.0))
    assert "optimiser vs MCF 1.0e-02 relative" in verdict(_measured(99.0), _measured(100.0), None)
    assert "found no matching (not_solved)" in verdict(_measured(0.0, "not_solved"), _measured(100.0), None)
    # on the side flavour the flow is only a bound: the optimiser is held to CBC's optimum alone
    assert "agree" in verdict(_measured(90.0), _measured(100.0, exact=False), _measured(90.0))


def test_the_worker_path_of_each_policy_is_timed_step_by_step(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.pickle"
    path.write_bytes(pickle.dumps(generate(80, seed=2)))
    for policy, run_status in (("rank_maximal", "solved"), ("min_change", "published")):
        measured = run.measure_worker(str(path), policy, "highs", 30)
        assert (measured["policy"], measured["run_status"], measured["status"]) == (policy, run_status, "optimal")
        steps = measured["steps"]
        assert {"claim", "snapshot -> Problem", "eligibility", "pre-check", "solve", "explanations",
                "recording"} == set(steps) and all(v >= 0 for v in steps.values())
        assert sum(steps.values()) <= measured["total_seconds"] + 1e-6 and measured["matches"] > 0
        assert set(measured["steps_cpu"]) == set(steps) and measured["steps_cpu"]["solve"] > 0  # CPU time too
        assert measured["cpu_seconds"] >= measured["steps_cpu"]["solve"]
    assert services_untouched()


def services_untouched() -> bool:
    from matching.service_layer import services

    return all(not hasattr(getattr(services, name), "__wrapped__") for name, _ in run.WORKER_STEPS)


def test_benchmark_with_policies_prints_a_table_per_policy_and_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert run.main(["--sizes", "60", "--policy", "max_fit,stable", "--time-limit", "30"]) == 0
    out = capsys.readouterr().out
    assert "policy max_fit ==" in out and "policy stable ==" in out and "whole path / solve" in out
    assert "CPU besides the solve" in out
    summary = [line for line in out.splitlines() if line.startswith("| 60 |")]
    assert [line.split(" | ")[1] for line in summary] == ["max_fit", "stable"]
    with pytest.raises(SystemExit):
        run.main(["--sizes", "60", "--policy", "fastest"])
