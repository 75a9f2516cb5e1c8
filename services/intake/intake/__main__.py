"""``python -m intake`` serves intake; ``python -m intake admin ...`` manages organisations."""

from __future__ import annotations

import sys


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "admin":
        from .entrypoints.cli import admin

        admin(sys.argv[2:])
        return
    from .bootstrap import main as serve

    serve()


if __name__ == "__main__":
    main()
