"""``python -m intake`` serves intake; ``python -m intake admin ...`` manages organisations;
``python -m intake dlq list|show|replay`` shows and replays the dead letters of intake's queues."""

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
    from .bootstrap import main as serve

    serve()


if __name__ == "__main__":
    main()
