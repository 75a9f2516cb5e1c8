"""Plans through the API as a coordinator sees them: the request answers 202 with the plan job's URL, a
worker (here: in this process, as the scheduling worker's planner loop does) does the job, and the job
gives the result with the validator's verdict."""

from __future__ import annotations

from typing import Any

from scheduling.service_layer import plan_jobs

from .test_matching_scheduling_api import Service


def submit(svc: Service, who: str, path: str, body: Any = None) -> str:
    """The plan job's URL, from the 202's Location."""
    resp = svc.call(who, "POST", path, body)
    assert resp.status_code == 202, resp.get_data(as_text=True)
    assert resp.get_json()["status"] in ("queued", "running", "done")
    return str(resp.headers["Location"])


def job(svc: Service, who: str, location: str) -> dict[str, Any]:
    resp = svc.get(who, location)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return dict(resp.get_json())


def plan(svc: Service, who: str, path: str, body: Any = None) -> dict[str, Any]:
    """Submit, let a worker do the job, and give the job's result (with ``kickoffs`` for a kickoff plan);
    the job is done and its validator found nothing wrong."""
    location = submit(svc, who, path, body)
    plan_jobs.run_pending(svc.infra.session_factory)
    done = job(svc, who, location)
    assert done["status"] == "done" and done["stage"] == "done", done
    assert done["verdict"] == {"valid": True, "violations": []}, done["verdict"]
    result = dict(done["result"])
    if done["kind"] == "kickoffs":
        result["kickoffs"] = done["kickoffs"]
    return result
