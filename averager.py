#!/usr/bin/env python3
"""averager.py: merge RAVE models into one (ravekit.commands.averager; installed: ravekit-averager)."""

import sys

from ravekit.commands.averager import get_parser, main

__all__ = ["get_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
