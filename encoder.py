#!/usr/bin/env python3
"""encoder.py: encode audio into RAVE latents (ravekit.commands.encoder; installed: ravekit-encoder)."""

import sys

from ravekit.commands.encoder import get_parser, main

__all__ = ["get_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
