"""``python -m scheduling`` serves scheduling (API and/or worker, per WERKPLAATS_PROCESS);
``python -m scheduling dlq list|show|replay`` shows and replays the dead letters of scheduling's queues."""

from __future__ import annotations

import sys


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "dlq":
        from werkplaats_shared import deadletters

        from .bootstrap import bootstrap

        sys.exit(deadletters.command(sys.argv[2:], "scheduling", bootstrap))
    from .bootstrap import main as serve

    serve()


if __name__ == "__main__":
    main()
