"""Operating it (issue 18), on the local default (embedded broker, SQLite, the services as separate processes):
one batch moves the counters and histograms of intake, matching and scheduling by what it caused (one request,
one run through its stages, its messages, one e-mail per notice), and its trace id, the one intake's answer
named, is in the log lines of all three services and in the e-mail delivery record of each notice."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from werkplaats_shared.devstack.demo import Api, setup_demo_data, wait_for_results
from werkplaats_shared.devstack.stack import SERVICES, LocalStack

from ..conftest import free_port

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
# the stages a run that is solved and published goes through (werkplaats_matching_run_stage_seconds)
RUN_STAGES = ("reading", "pre-check", "building", "solving", "extracting", "recording")


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def consumed(samples: Samples) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {k: v for k, v in samples.items() if k[0].startswith("werkplaats_messages_")}


def settled(ports: dict[str, int]) -> dict[str, Samples]:
    """Every service's metrics once no outbox row waits and no message was consumed for three seconds."""
    deadline = time.monotonic() + 120
    while True:
        before = {s: scrape(p) for s, p in ports.items()}
        if all(value(before[s], "werkplaats_outbox_waiting", service=s) == 0 for s in ports):
            time.sleep(3)
            after = {s: scrape(p) for s, p in ports.items()}
            if all(consumed(before[s]) == consumed(after[s]) for s in ports):
                return after
        assert time.monotonic() < deadline, "the services did not settle"
        time.sleep(0.5)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def log_lines(data_dir: str, service: str, trace_id: str) -> list[dict[str, Any]]:
    lines = Path(data_dir, f"{service}.log").read_text(encoding="utf-8").splitlines()
    return [entry for entry in (json.loads(line) for line in lines if line.startswith("{"))
            if entry.get("trace_id") == trace_id]


def test_a_batch_moves_the_metrics_of_all_three_services_and_is_one_trace_through_their_logs(
        make_stack: Callable[..., LocalStack]) -> None:
    ports = {service: free_port() for service in SERVICES}
    env = {service: {"WERKPLAATS_METRICS_PORT": str(ports[service])} for service in SERVICES}
    # the reconciliation runs once at the start only: the workspace is announced by its first batch, here
    env["intake"]["WERKPLAATS_RECONCILE_INTERVAL"] = "86400"
    stack = make_stack(service_env=env)
    data = setup_demo_data(stack, say=lambda _line: None)
    coordinator = Api(stack.url("intake"), data.coordinator_key)
    before = settled(ports)

    batch = coordinator.post("/batches", {"workspace_id": data.workspace_id, "period": "2027-S1",
                                          "assignment_ids": data.assignment_ids})
    trace_id = coordinator.last_trace_id  # intake's answer names the trace (traceresponse)
    assert trace_id is not None and len(trace_id) == 32
    result = wait_for_results(stack, data, batch["id"])
    after = settled(ports)
    run, notices = result.run, [n for n in result.notices if n["run_id"] == result.run["id"]]
    assert run["status"] == "published" and len(notices) == len(data.firm_keys)

    # intake: the one request, counted and timed; the run's two messages back from matching
    i0, i1 = before["intake"], after["intake"]
    route = {"service": "intake", "route": "/batches", "method": "POST"}
    assert delta(i0, i1, "werkplaats_http_requests_total", **route, status="201") == 1
    assert delta(i0, i1, "werkplaats_http_request_duration_seconds_count", **route) == 1
    assert delta(i0, i1, "werkplaats_http_request_duration_seconds_sum", **route) > 0
    assert delta(i0, i1, "werkplaats_messages_consumed_total", service="intake",
                 queue="intake.from-matching") == 2  # matches.published, run.ended
    # matching: the workspace's announcement and the batch consumed, one run published, each stage timed once
    m0, m1 = before["matching"], after["matching"]
    assert delta(m0, m1, "werkplaats_messages_consumed_total", service="matching",
                 queue="matching.from-intake") == 2  # workspace.registered, batch.submitted
    assert delta(m0, m1, "werkplaats_matching_runs_total", policy=run["policy"], status="published") == 1
    assert sum(v for (name, _), v in m1.items() if name == "werkplaats_matching_runs_total") - sum(
        v for (name, _), v in m0.items() if name == "werkplaats_matching_runs_total") == 1
    for stage in RUN_STAGES:
        assert delta(m0, m1, "werkplaats_matching_run_stage_seconds_count", stage=stage) == 1, stage
    assert delta(m0, m1, "werkplaats_matching_run_stage_seconds_count", stage="failing") == 0
    assert delta(m0, m1, "werkplaats_matching_run_stage_seconds_sum", stage="solving") > 0
    # scheduling: the announcements and the published matches consumed, one e-mail sent per notice
    s0, s1 = before["scheduling"], after["scheduling"]
    assert delta(s0, s1, "werkplaats_messages_consumed_total", service="scheduling",
                 queue="scheduling.from-intake") == 2  # workspace.registered, batch.announced
    assert delta(s0, s1, "werkplaats_messages_consumed_total", service="scheduling",
                 queue="scheduling.from-matching") == 1  # matches.published
    assert delta(s0, s1, "werkplaats_notice_deliveries_total", channel="email", outcome="sent") == len(notices)
    assert delta(s0, s1, "werkplaats_notice_deliveries_total", channel="email", outcome="failed") == 0
    for service in SERVICES:  # nothing went wrong on the way
        for name in ("werkplaats_messages_retried_total", "werkplaats_messages_dead_lettered_total",
                     "werkplaats_messages_duplicate_total"):
            assert sum(v for (n, _), v in after[service].items() if n == name) == sum(
                v for (n, _), v in before[service].items() if n == name), (service, name)

    # the trace: the submission in intake, the batch and its run in matching, the notices in scheduling, and
    # the run's messages back in intake, each line under the trace id of intake's answer
    intake_lines = log_lines(stack.data_dir, "intake", trace_id)
    assert [line["batch_id"] for line in intake_lines if line["msg"] == "batch sent to matching"] == [batch["id"]]
    assert sorted(line["type"] for line in intake_lines if line["msg"] == "message applied") == [
        "matches.published", "run.ended"]
    matching_lines = log_lines(stack.data_dir, "matching", trace_id)
    assert sorted(line["type"] for line in matching_lines if line["msg"] == "message applied") == [
        "batch.submitted", "workspace.registered"]
    assert [line["run_id"] for line in matching_lines if line["msg"] == "run solved"] == [run["id"]]
    scheduling_lines = log_lines(stack.data_dir, "scheduling", trace_id)
    assert sorted(line["type"] for line in scheduling_lines if line["msg"] == "message applied") == [
        "batch.announced", "matches.published", "workspace.registered"]
    # the e-mail delivery record of every notice, as the coordinator reads it, names the batch's trace
    scheduling = Api(stack.url("scheduling"), data.coordinator_key)
    for notice in notices:
        assert notice["trace_id"] == trace_id
        deliveries = scheduling.get(f"/notices/{notice['id']}/deliveries")
        assert [(d["channel"], d["error"], d["trace_id"]) for d in deliveries] == [("email", None, trace_id)]
    # the keys issued before the batch were handled in traces of their own, not this one
    assert all(line.get("type") != "apikey.issued" for line in matching_lines + scheduling_lines)
