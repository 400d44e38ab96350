#!/usr/bin/env python3
"""decoder.py: decode RAVE latents into audio (ravekit.commands.decoder; installed: ravekit-decoder)."""

import sys

from ravekit.commands.decoder import get_parser, main

__all__ = ["get_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
