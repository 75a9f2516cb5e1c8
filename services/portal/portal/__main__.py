"""``python -m portal`` serves the portal's pages."""

from .bootstrap import main

if __name__ == "__main__":
    main()
