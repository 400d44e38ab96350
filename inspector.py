#!/usr/bin/env python3
"""inspector.py: what is inside a RAVE model (ravekit.commands.inspector; installed: ravekit-inspector)."""

import sys

from ravekit.commands.inspector import get_parser, main

__all__ = ["get_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
