"""The solver loop: claims queued runs (or runs whose worker died) and solves them."""

from __future__ import annotations

import threading

from werkplaats_shared.runner import Loop
from werkplaats_shared.service import Infrastructure

from ..memory import cycles_paused
from ..service_layer import services


def solver_loop(infra: Infrastructure) -> Loop:
    def run(stop: threading.Event) -> None:
        while not stop.is_set():
            # one pause of the cyclic collector from the claim's parse of the snapshot to the recorded result
            # (matching.memory): the objects the claim made are walked once, after the run
            with cycles_paused():
                run_id = services.claim_next_run(infra.session_factory)
                if run_id is not None:
                    services.execute_run(infra.session_factory, infra.emit, run_id, infra.settings.solver,
                                         infra.settings.solver_time_limit, stop=stop)
            if run_id is None:
                stop.wait(infra.settings.poll_interval)

    return Loop("solver", run)
