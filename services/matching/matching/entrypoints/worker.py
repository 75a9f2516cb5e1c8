"""The solver loop: claims queued runs (or runs whose worker died) and solves them."""

from __future__ import annotations

import threading

from werkplaats_shared.runner import Loop
from werkplaats_shared.service import Infrastructure

from ..service_layer import services


def solver_loop(infra: Infrastructure) -> Loop:
    def run(stop: threading.Event) -> None:
        while not stop.is_set():
            run_id = services.claim_next_run(infra.session_factory)
            if run_id is None:
                stop.wait(infra.settings.poll_interval)
                continue
            services.execute_run(infra.session_factory, infra.emit, run_id, infra.settings.solver,
                                 infra.settings.solver_time_limit, stop=stop)

    return Loop("solver", run)
