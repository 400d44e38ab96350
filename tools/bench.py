"""The performance benchmark: every target of the performance issue, measured as ratios in one run.

Builds its own inputs under _bench/, then for the demo model and every real export in
$RAVE_TEST_MODELS measures, each as a ratio to its floor:
  throughput  encoder.py / decoder.py with their defaults over 12 one-minute files in mixed
              formats (whole process, start to exit) vs the best floor: the bare model's fastest
              layout (call length, threads, processes), found by search in this run, plus what
              any script pays to start (tools/bench_floor.py, tools/bench_throughput.py);
              target <= 1.05 (<= 1.10 where decoding the files binds, not the model)
  fixed       one 5-second file: encoder.py vs a minimal script; target <= 1.10
  resynthesis decoder.py on the same audio (encode and decode in one step) vs encoder.py +
              decoder.py, vs rave-generate-style whole files, vs the best floor
              (tools/bench_resynthesis.py); targets <= 1.0 and <= 1.05
  jobs        --jobs 1 vs the default --jobs auto (no target)
  memory      peak RSS on a 60-minute file vs on a 1-minute file; target <= 1.25
  exactness   chunked vs whole-signal processing on deterministic paths; target <= 1e-4
  start-up    --help of every script vs `python -c pass` (no target: argparse alone costs 2x)
  statistics  generator statistics over 100 hours of latents vs a numpy reference (tools/bench_stats.py)
  align       averager --align on two exports of one architecture: output RMS and log-spectrum
              distance of the aligned and the unaligned merge (tools/bench_align.py; no target)
  layout      today's defaults (a fixed base commit) vs the working tree's, encoder.py and
              decoder.py, one 20-minute file and 20 one-minute files, idle and beside a busy loop,
              on the small exports and a full-size-shaped one (tools/bench_layout.py); targets
              new/today <= 1.0 idle (within noise), new loaded/idle <= 1.5; and the working tree's
              outputs alone vs in a batch, --jobs 1 and 2, byte for byte (target: 0 layouts differ)
  transfer    decoder.py --encoder A --map on the trained pair (../trained-models, ../audio): spectral
              distance of mapped and raw transfer to B's own resynthesis on held-out audio (target
              mapped/raw <= 1/3), and fitting on 60 s vs encoding it twice (target <= 1.0)
              (tools/bench_transfer.py)
  merge       averager on the trained pair (plucks_a/plucks_b beside $RAVE_TEST_MODELS): spectral
              distance, barrier and loudness of plain, --align, --repair ... merges at weights
              0..1, calibrated on half of audio/, measured on the other half (tools/bench_merge.py);
              targets for --align --repair: barrier <= 1/10 of plain's, loudness within 2 dB
Timings are medians of --repeat runs, interleaved with their floors so that load on this shared
machine hits both alike. Prints one table and writes _bench/bench.json. A benchmark, not a test.

Usage: python -m tools.bench [--repeat 3] [--skip_long] [--skip_stats] [--only GROUP,...] [--models NAME,...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tools.bench_common import BENCH, ENV, PY, ROOT, wall
from tools.bench_inputs import build_audio, build_long

GROUPS = ("startup", "throughput", "fixed", "resynthesis", "jobs", "exactness", "memory", "stats", "align", "layout",
          "transfer", "merge")

PEAK = "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); " \
       "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"


def peak_mb(cmd: list[str]) -> float:
    res = subprocess.run([PY, "-c", PEAK, *cmd], check=True, capture_output=True, text=True, cwd=ROOT)
    return int(res.stdout.split()[-1]) / 1024


def parallel_jobs(model: Path, repeat: int, rows: list) -> None:
    """What the default --jobs auto gains over one process using every core: --jobs 1 vs the default."""
    audio, out = BENCH / "audio", BENCH / "work" / model.stem / "jobs"
    base = [PY, "encoder.py", "-m", str(model), "-i", str(audio), "-o", str(out), "--force", "-q"]
    singles, autos = [], []
    for _ in range(repeat):
        singles.append(wall(base + ["--jobs", "1"], env=ENV)[0])
        autos.append(wall(base, env=ENV)[0])
    one, auto = statistics.median(singles), statistics.median(autos)
    rows.append(dict(model=model.stem, metric="encode 12 x 1 min, --jobs 1 vs the default --jobs auto (info)",
                     measured=f"{one:.2f} s vs {auto:.2f} s", ratio=one / auto, target=None))


def memory(model: Path, rows: list) -> None:
    from ravekit.engine.model import load_model

    sr = load_model(model, "cpu", checksum=False).info.sr
    work = BENCH / "work" / model.stem / "mem"
    peaks = {}
    for minutes in (1, 60):
        src = build_long(BENCH / "long", minutes, sr)
        out = work / f"{minutes}"
        peaks[("encode", minutes)] = peak_mb([PY, "encoder.py", "-m", str(model), "-i", str(src), "-o", str(out),
                                              "--force", "-q"])
        peaks[("decode", minutes)] = peak_mb([PY, "decoder.py", "-m", str(model), "-i", str(out), "-o",
                                              str(work / f"{minutes}-audio"), "--force", "-q"])
    for name in ("encode", "decode"):
        one, sixty = peaks[(name, 1)], peaks[(name, 60)]
        rows.append(dict(model=model.stem, metric=f"{name} peak RSS, 60 min vs 1 min file",
                         measured=f"{sixty:.0f} MB vs {one:.0f} MB", ratio=sixty / one, target=1.25))


def exactness(model: Path, rows: list) -> None:
    import numpy as np

    from ravekit.engine.chunks import decode_latents, encode_blocks, encode_signal, measure_context
    from ravekit.engine.model import load_model

    m = load_model(model, "cpu", checksum=False)
    ctx = measure_context(m)
    rng = np.random.default_rng(0)
    # The deterministic path of each kind (docs/long-files.md): the demo's and a discrete export's
    # encoder (a discrete decoder adds fresh noise inside every call), else decode with every dim
    # (v2 encoders, streaming ones too, sample their posterior).
    if m.info.discrete or m.info.original_name.startswith("Demo"):
        x = (0.1 * rng.standard_normal((m.info.n_channels, 60 * m.info.sr))).astype(np.float32)
        whole = encode_signal(m, x)
        chunked = encode_blocks(m, [x], chunk=max(1, whole.shape[-1] // 7), context=ctx.encode)
        rows.append(dict(model=model.stem, metric="encode chunked vs whole, max abs diff",
                         measured=f"{np.abs(whole - chunked).max():.2e}", ratio=float(np.abs(whole - chunked).max()),
                         target=1e-4))
    else:  # stochastic encoder: the deterministic path is decode with every dim
        z = rng.standard_normal((1, m.info.decode_dims, 600)).astype(np.float32)
        whole = decode_latents(m, z)
        chunked = decode_latents(m, z, chunk=97, context=ctx.decode)
        diff = float(np.abs(whole - chunked).max() / np.abs(whole).max())
        rows.append(dict(model=model.stem, metric="decode chunked vs whole, max diff / peak",
                         measured=f"{diff:.2e}", ratio=diff, target=1e-4))


def startup(rows: list, runs: int = 15) -> None:
    """--help of every script vs `python -c pass`, interleaved round by round."""
    # What argparse alone costs, for scale: the scripts' floor short of dropping argparse.
    bare = "import argparse; p = argparse.ArgumentParser(); p.add_argument('--x', help='y'); p.print_help()"
    cmds = {"pass": [PY, "-c", "pass"], "bare argparse": [PY, "-c", bare]}
    cmds.update({s: [PY, s, "--help"] for s in ("encoder.py", "decoder.py", "generator.py", "inspector.py",
                                                 "averager.py") if (ROOT / s).exists()})
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(runs):
        for name, cmd in cmds.items():
            times[name].append(wall(cmd)[0])
    base = statistics.median(times.pop("pass"))
    for name, values in times.items():
        t = statistics.median(values)
        reference = name == "bare argparse"
        rows.append(dict(model="-", metric=f"{name} --help vs python -c pass" + (" (reference)" if reference else ""),
                         measured=f"{t * 1000:.0f} ms vs {base * 1000:.0f} ms", ratio=t / base, target=None))


def stats_bench(rows: list) -> None:
    out = subprocess.run([PY, "-m", "tools.bench_stats"], check=True, capture_output=True, text=True, cwd=ROOT).stdout
    for line in out.splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            rows.append(dict(model="100 h, 16 dims", metric=f"generator {r['case']}, time vs numpy",
                             measured=f"{r['ravekit_s']:.1f} s vs {r['reference_s']:.1f} s",
                             ratio=r["time_ratio"], target=2.0))
            rows.append(dict(model="100 h, 16 dims", metric=f"generator {r['case']}, peak RSS vs numpy",
                             measured=f"{r['ravekit_rss_mb']:.0f} MB vs {r['reference_rss_mb']:.0f} MB",
                             ratio=r["rss_ratio"], target=2.0))


def met_target(row: dict) -> bool:
    """Whether a row with a target meets it: its own judgement (``met``) where it gives one, else ratio <= target."""
    return row["met"] if "met" in row else row["ratio"] <= row["target"]


def table(rows: list) -> str:
    lines = ["| model | metric | measured | ratio | target | met |", "|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "-" if r["ratio"] is None else (
            f"{r['ratio']:.2e}" if r["target"] is not None and 0 < r["target"] < 0.01 else f"{r['ratio']:.2f}")
        met = "-" if r["target"] is None else ("yes" if met_target(r) else "NO")
        target = "-" if r["target"] is None else f"{r['target']:g}"
        lines.append(f"| {r['model']} | {r['metric']} | {r['measured']} | {ratio} | {target} | {met} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--skip_long", action="store_true", help="no 60-minute memory runs")
    p.add_argument("--skip_stats", action="store_true", help="no 100-hour statistics run")
    p.add_argument("--only", help=f"run only these groups of rows, comma-separated: {', '.join(GROUPS)}")
    p.add_argument("--models", help="only the models whose names contain one of these, comma-separated")
    args = p.parse_args(argv)
    from ravekit.demo.model import build_demo_model
    from tools.bench_resynthesis import resynthesis
    from tools.bench_throughput import fixed_costs, throughput

    run = set(GROUPS) if args.only is None else set(args.only.split(","))
    if run - set(GROUPS):
        p.error(f"--only: unknown group {', '.join(sorted(run - set(GROUPS)))}; choose from {', '.join(GROUPS)}")
    if args.skip_long:
        run.discard("memory")
    if args.skip_stats:
        run.discard("stats")

    demo = ROOT / "models" / "demo.ts"
    if not demo.exists():
        build_demo_model(demo)
    folder = os.environ.get("RAVE_TEST_MODELS")
    models = [demo] + (sorted(Path(folder).rglob("*.ts")) if folder else [])
    if args.models:
        models = [m for m in models if any(k in m.stem for k in args.models.split(","))]
    build_audio(BENCH / "audio")
    rows: list[dict] = []
    details: dict = {}  # the floor searches, every layout's time, for the JSON
    if "startup" in run:
        startup(rows)
    for model in models:
        print(f"bench: {model.name}", file=sys.stderr, flush=True)
        if "throughput" in run:
            throughput(model, args.repeat, rows, details)
        if "fixed" in run:
            fixed_costs(model, args.repeat, rows)
        if "resynthesis" in run:
            resynthesis(model, args.repeat, rows, details)
        if "jobs" in run:
            parallel_jobs(model, args.repeat, rows)
        if "exactness" in run:
            exactness(model, rows)
        if "memory" in run:
            memory(model, rows)
    if "stats" in run:
        print("bench: generator statistics", file=sys.stderr, flush=True)
        stats_bench(rows)
    layout: dict = {}  # today's defaults vs the working tree's: every timing and digest, for the JSON
    layout_tables: list[str] = []
    merge_table: list[str] = []
    if "layout" in run:
        from tools.bench_layout import layout_rows

        print("bench: layout, today's defaults vs the working tree's", file=sys.stderr, flush=True)
        layout_tables = layout_rows(rows, layout, args.repeat, only=args.models)
    if "align" in run:
        from tools.bench_align import align_rows

        print("bench: averager --align", file=sys.stderr, flush=True)
        align_rows(models, rows)
    if "transfer" in run:
        from tools.bench_transfer import transfer_rows

        print("bench: transfer through a latent map", file=sys.stderr, flush=True)
        transfer_rows(rows, BENCH / "transfer", args.repeat)
    if "merge" in run:
        from tools.bench_merge import merge_rows

        print("bench: averager merges of the trained pair", file=sys.stderr, flush=True)
        merge_table = merge_rows(rows)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    try:
        import torch

        machine += f", torch {torch.__version__}, {torch.get_num_threads()} threads"
    except ImportError:
        pass
    text = table(rows)
    print(f"machine: {machine}\n\n{text}")
    if layout_tables:
        print("\nlayout (tools/bench_layout.py):\n" + "\n".join(layout_tables))
    if merge_table:
        print("\n" + "\n".join(merge_table))
    (BENCH / "bench.json").write_text(json.dumps({"machine": machine, "date": time.strftime("%Y-%m-%d"),
                                                  "rows": rows, "floor_search": details, "layout": layout,
                                                  "merge": merge_table},
                                                 indent=2))
    return 0 if all(r["target"] is None or met_target(r) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
