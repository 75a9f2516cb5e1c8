"""Fault tests on the local default: nothing lost, nothing done twice."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from werkplaats_shared.devstack.demo import Api, setup_demo_data, submit_batch, wait_for_results
from werkplaats_shared.devstack.stack import LocalStack

pytestmark = pytest.mark.e2e


def _runs_for(stack: LocalStack, key: str, batch_id: str) -> list[dict[str, object]]:
    runs = Api(stack.url("matching"), key).get("/runs?page_size=100")
    return [r for r in runs if r["batch_id"] == batch_id]


def test_broker_unreachable_while_intake_api_is_used(make_stack: Callable[..., LocalStack]) -> None:
    stack = make_stack()
    data = setup_demo_data(stack, say=lambda _line: None)
    assert stack.broker is not None
    stack.broker.stop()
    intake = Api(stack.url("intake"), data.coordinator_key)
    ready = _status(stack.url("intake") + "/ready")
    assert ready == 503
    # the API still answers and stores the batch; its message waits in the outbox
    batch = submit_batch(stack, data)
    assert batch["status"] == "submitted"
    assert intake.get(f"/batches/{batch['id']}")["status"] == "submitted"
    time.sleep(1.0)
    stack.broker.start()
    result = wait_for_results(stack, data, batch["id"])
    assert result.batch["status"] == "matched"
    assert len(result.batch["matches"]) == len(data.assignment_ids)
    assert len(_runs_for(stack, data.coordinator_key, batch["id"])) == 1
    assert _status(stack.url("intake") + "/ready") == 200


def test_matching_killed_and_restarted_mid_flow(make_stack: Callable[..., LocalStack]) -> None:
    stack = make_stack()
    data = setup_demo_data(stack, say=lambda _line: None)
    stack.kill_service("matching", signal.SIGKILL)
    batch = submit_batch(stack, data)
    time.sleep(1.0)  # intake's relay publishes batch.submitted while matching is down
    stack.start_service("matching")
    stack.wait_ready(services=("matching",))
    result = wait_for_results(stack, data, batch["id"])
    assert len(result.batch["matches"]) == len(data.assignment_ids)
    assert len(_runs_for(stack, data.coordinator_key, batch["id"])) == 1


def test_matching_consumer_killed_after_commit_before_ack(make_stack: Callable[..., LocalStack],
                                                          tmp_path: Path) -> None:
    marker = tmp_path / "matching-killed"
    stack = make_stack(service_env={"matching": {
        "WERKPLAATS_FAULT": f"kill-after-commit:matching.from-intake:batch.submitted:{marker}"}})
    data = setup_demo_data(stack, say=lambda _line: None)
    batch = submit_batch(stack, data)
    process = stack.processes["matching"]
    assert process.wait(60) == -signal.SIGKILL  # died after committing the run, before the ack
    assert marker.exists()
    del stack.processes["matching"]
    stack.start_service("matching")
    stack.wait_ready(services=("matching",))
    result = wait_for_results(stack, data, batch["id"])
    assert len(result.batch["matches"]) == len(data.assignment_ids)
    # the broker redelivers the unacknowledged batch.submitted after its visibility timeout; the
    # consumer finds its id in the inbox, acknowledges it, and there is still exactly one run
    log = Path(stack.data_dir, "matching.log")
    deadline = time.monotonic() + 30
    while "duplicate message ignored" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "duplicate message ignored" in log.read_text()
    assert len(_runs_for(stack, data.coordinator_key, batch["id"])) == 1


def _status(url: str) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
