"""Build the toolkit's demo model (a scripted band vocoder with RAVE's interface).

Usage: python -m tools.make_demo_model [OUT.ts] [--ratio N] [--sr HZ] [--latent_size N] [--channels N] [--streaming]
"""

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("output", nargs="?", default="models/demo.ts")
    parser.add_argument("--sr", type=int, default=44100)
    parser.add_argument("--ratio", type=int, default=2048)
    parser.add_argument("--latent_size", type=int, default=8)
    parser.add_argument("--channels", type=int, default=1, choices=[1, 2])
    parser.add_argument("--streaming", action="store_true")
    args = parser.parse_args(argv)
    from ravekit.demo.model import build_demo_model

    path = build_demo_model(args.output, sr=args.sr, ratio=args.ratio, latent_size=args.latent_size,
                            channels=args.channels, streaming=args.streaming)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
