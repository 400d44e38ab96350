#!/usr/bin/env python3
"""generator.py: latent loops from latent statistics (ravekit.commands.generator; installed: ravekit-generator)."""

import sys

from ravekit.commands.generator import get_parser, main

__all__ = ["get_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
