#!/usr/bin/env python3
"""Put together the run summaries (--summary FILE) of the shards of one batch, e.g. the tasks of a SLURM job
array: list every file that failed, every run that stopped early and every shard with no summary at all.

The inputs that failed go to stdout, one per line (NUL-terminated with -0), so they can be fed back:
  python -m ravekit.commands.gather summaries/ | python encoder.py --model model.ts --input - --output latents
Each failure's reason, and one line of totals, go to stderr. Exit code 0 when every file of every shard was
written (or was there already), 1 otherwise.

example:
  python -m ravekit.commands.gather summaries/encode-*.json --expect 4
"""

from __future__ import annotations

import sys
from pathlib import Path

from ravekit.commands import console
from ravekit.commands import flags as cli
from ravekit.errors import RavekitError
from ravekit.io.run_summary import gather

PROG = "python -m ravekit.commands.gather"


def get_parser():
    p = cli.make_parser(PROG, __doc__)
    p.add_argument("summaries", nargs="+", metavar="SUMMARY",
                   help="run summaries written by encoder.py / decoder.py --summary, or folders of them (*.json)")
    p.add_argument("--expect", type=int, default=None, metavar="N",
                   help="the batch was cut into N shards: a shard K/N with no summary counts as failed "
                   "(default: the N the summaries' --shard K/N say)")
    cli.add_null_arg(p)
    return p


def body(argv) -> int:

    args = cli.parse_args(get_parser(), argv)
    if args.expect is not None and args.expect < 1:
        raise RavekitError(f"--expect {args.expect}: give the number of shards, 1 or more", 2)
    paths: list[Path] = []
    for given in map(Path, args.summaries):
        if given.is_dir():
            found = sorted(p for p in given.glob("*.json") if not p.name.startswith("."))
            if not found:
                raise RavekitError(f"{given}: holds no run summary (*.json); pass the folder --summary wrote to", 2)
            paths += found
        elif given.exists():
            paths.append(given)
        else:
            raise RavekitError(f"{given}: no such run summary; was that shard's task ever run?")
    result = gather(paths, args.expect)
    for source, error, _ in result.failed:
        console.print_path(source, args.null)
        console.say(f"{PROG}: failed: {console.one_line(error)}")
    for where, why in result.unfinished:
        console.say(f"{PROG}: {where}: the run stopped early: {console.one_line(why)}")
    for shard in result.missing_shards:
        console.say(f"{PROG}: shard {shard}: no run summary (its task was killed or never ran); run it again")
    c = result.counts
    console.info(PROG, f"{result.summaries} run summaries: {c['written']} written, {c['skipped']} already there, "
             f"{c['failed']} failed, {len(result.unfinished)} run(s) stopped early, "
             f"{len(result.missing_shards)} shard(s) missing")
    return 0 if result.ok else 1


def main(argv=None) -> int:
    return console.run_main(PROG, lambda: body(argv))


if __name__ == "__main__":
    sys.exit(main())
