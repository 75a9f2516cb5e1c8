"""``python -m matching`` serves matching (API and/or worker, per WERKPLAATS_PROCESS)."""

from .bootstrap import main

if __name__ == "__main__":
    main()
