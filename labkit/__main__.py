"""`python -m labkit …` is the `labkit` command (for Windows, or a Python whose scripts folder is not on PATH)."""

import sys

from labkit.cli import main

if __name__ == "__main__":
    sys.exit(main())
