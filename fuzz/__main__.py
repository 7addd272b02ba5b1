"""`python -m fuzz`: the long fuzz run of fuzz/run.py."""

from __future__ import annotations

import sys

from fuzz.run import main

if __name__ == "__main__":
    sys.exit(main())
