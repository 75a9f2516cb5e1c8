"""``python -m intake`` serves intake; ``python -m intake admin ...`` manages organisations;
``python -m intake dlq list|show|replay`` shows and replays the dead letters of intake's queues;
``python -m intake reconcile`` announces again, once, the batches left without a run outcome (see
``service_layer/reconcile.py``)."""

from __future__ import annotations

import sys


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "admin":
        from .entrypoints.cli import admin

        admin(sys.argv[2:])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "dlq":
        from werkplaats_shared import deadletters

        from .bootstrap import bootstrap

        sys.exit(deadletters.command(sys.argv[2:], "intake", bootstrap))
    if len(sys.argv) > 1 and sys.argv[1] == "reconcile":
        from .bootstrap import bootstrap
        from .service_layer.reconcile import reconcile_once

        done = reconcile_once(bootstrap())
        print(f"workspaces announced: {done.workspaces_announced}; batches announced again: "
              f"{done.batches_reannounced}; batches left for an operator: {done.batches_given_up}")
        return
    from .bootstrap import main as serve

    serve()


if __name__ == "__main__":
    main()
