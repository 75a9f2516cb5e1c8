"""A scheduling planner in its own process, for tests that kill it: ``python -m
tests.integration.plan_worker_process DATABASE_URL DATA_DIR LEASE_SECONDS [--until-idle]`` does plan jobs
(with a lease of LEASE_SECONDS, workshop plans to WERKPLAATS_WORKSHOP_PLAN_GAP as the worker's planner loop)
until it is killed, or with --until-idle until none is left."""

from __future__ import annotations

import sys
import threading

from scheduling import bootstrap
from scheduling.service_layer import plan_jobs
from werkplaats_shared.config import Settings

SECRET_KEY = "plan-worker-process-secret-key-0123456789"


def main(argv: list[str]) -> None:
    url, data_dir, lease = argv[0], argv[1], float(argv[2])
    infra = bootstrap.bootstrap(Settings.from_env("scheduling", {
        "WERKPLAATS_DATABASE_URL": url, "WERKPLAATS_DATA_DIR": data_dir, "WERKPLAATS_SECRET_KEY": SECRET_KEY}))
    gap = bootstrap.workshop_plan_gap()
    stop = threading.Event()
    print("ready", flush=True)
    while True:
        done = plan_jobs.run_pending(infra.session_factory, stop, lease=lease, workshop_gap=gap)
        if "--until-idle" in argv and done == 0:
            break
        stop.wait(0.1)
    infra.engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1:])
