"""Layout rows of the benchmark: today's defaults against the working tree's, idle and under load.

"Today" is the code of a fixed base commit (BASE_COMMIT), extracted with ``git archive`` into
_bench/layout/base-<commit>/ and run with the same Python; "new" is the working tree. Both run
encoder.py and decoder.py with their default flags (no --jobs, no --threads), in an environment
without RAVEKIT_JOBS, RAVEKIT_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS and PYTHONPATH, each with
its own probe cache. Each decodes the latents its own encoder wrote. For every model:
  inputs   one long file (--minutes, 20) and --files (20) files of one minute (mixed formats);
  load     idle (nobody else's load is controlled: the load average is printed at the start
           and the end of every section), and with one CPU-bound busy loop started here;
  timing   whole process, start to exit; medians of --repeat runs interleaved today, new,
           today, new, ... after one untimed warm-up run of each (probe cache, page cache).
Targets: on the idle machine new/today <= 1.0, judged within noise: each round gives a paired
ratio new/today (both ran back to back), and half the range of those paired ratios is the
noise; a ratio above 1.0 but within 1.0 + noise is "yes (noise)". Under load new loaded /
new idle <= 1.5 (idle and loaded runs are minutes apart, so no noise allowance there).
The full-size-shaped model (tools/make_fullsize_export.py, built into _bench/layout/models/)
uses a shorter long file (--fullsize_minutes) to keep the run short; its rows say so.
Exactness: the working tree's outputs for one file alone and in a batch of 4, with --jobs 1
and --jobs 2, compared byte for byte (sha256 of every .npy / audio file; JSON sidecars,
which record paths and layouts, are left out).

Usage: python -m tools.bench_layout [--repeat 3] [--minutes 20] [--files 20] [--fullsize_minutes 5]
                                    [--models NAME,...] [--base COMMIT] [--no_exactness]
(``python -m tools.bench --only layout`` runs it with the defaults as part of the benchmark.)
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.bench_inputs import build_audio, build_long

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "_bench"
WORK = BENCH / "layout"
PY = sys.executable
BASE_COMMIT = "6bec1ca"
SMALL = ("v2cap16_mono_44k_seed0", "v2smallcap16_mono_44k_seed0")
FULLSIZE = "v2cap64shaped_mono_44k_seed0"  # built from SMALL[0]'s architecture, 4x wider
STRIP = ("RAVEKIT_JOBS", "RAVEKIT_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "PYTHONPATH")
SCRIPTS = {"encode": "encoder.py", "decode": "decoder.py"}


def clean_env(cache: Path) -> dict[str, str]:
    """The environment both codes run in: the defaults, nothing that picks a layout, a probe cache of their own."""
    env = {k: v for k, v in os.environ.items() if k not in STRIP}
    env["RAVEKIT_CACHE_DIR"] = str(cache)
    return env


def extract_base(commit: str) -> Path:
    """The scripts of ``commit``, extracted once into _bench/layout/base-<commit>/ (renamed into place when whole)."""
    dest = WORK / f"base-{commit}"
    if (dest / "encoder.py").exists():
        return dest
    WORK.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=WORK, prefix=".base-"))
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def fullsize_model(source: Path) -> Path:
    """The full-size-shaped export, built from ``source`` at the first run that needs it."""
    from tools.make_fullsize_export import make_fullsize

    dest = WORK / "models" / f"{FULLSIZE}.ts"
    if not dest.exists():
        print(f"bench layout: building {dest.name} from {source.name}", file=sys.stderr, flush=True)
        make_fullsize(source, dest)
    return dest


def pick_models(folder: str | None, only: str | None) -> list[Path]:
    """The small shipped exports (or those named by ``only``) and the full-size-shaped one."""
    shipped = sorted(Path(folder).rglob("*.ts")) if folder else []
    source = next((m for m in shipped if m.stem == SMALL[0]), None)
    if source is None:
        raise SystemExit(f"bench layout: no {SMALL[0]}.ts under $RAVE_TEST_MODELS ({folder}): "
                         "set it to the folder of the shipped exports")
    names = [m.stem for m in shipped] + [FULLSIZE]
    chosen = [n for n in names if any(k in n for k in only.split(","))] if only else [*SMALL, FULLSIZE]
    return [fullsize_model(source) if n == FULLSIZE else next(m for m in shipped if m.stem == n)
            for n in names if n in chosen]


@contextlib.contextmanager
def busy_loop(on: bool):
    """One CPU-bound process for the length of a section (killed, by its own id, on the way out)."""
    if not on:
        yield
        return
    proc = subprocess.Popen([PY, "-c", "while True: pass"])
    try:
        time.sleep(1.0)  # let it reach the run queue before the first timed run
        yield
    finally:
        proc.kill()
        proc.wait()


def command(code: Path, script: str, model: Path, inputs: list[Path], out: Path, extra=()) -> list[str]:
    return [PY, str(code / SCRIPTS[script]), "-m", str(model), "-i", *map(str, inputs), "-o", str(out),
            "--force", "-q", *extra]


def run(cmd: list[str], code: Path, env: dict) -> float:
    """Seconds from start to exit of ``cmd`` run in ``code``'s folder; its error in the exception if it fails."""
    t = time.perf_counter()
    res = subprocess.run(cmd, cwd=code, env=env, capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f"{' '.join(cmd[1:3])} failed (exit {res.returncode}): {res.stderr.strip()[-400:]}")
    return time.perf_counter() - t


def section(model: Path, case: str, inputs: list[Path], codes: dict[str, Path], loaded: bool, repeat: int,
            warm: bool) -> dict:
    """Timings of one (model, input, load) section: ``{"times": {"today encode": [s, ...], ...}, "loadavg": ...}``."""
    out = WORK / "out" / model.stem / case
    envs = {name: clean_env(WORK / f"cache-{name}") for name in codes}

    def cmds(name: str) -> dict[str, list[str]]:
        lat, dec = out / name / "latents", out / name / "audio"
        return {"encode": command(codes[name], "encode", model, inputs, lat),
                "decode": command(codes[name], "decode", model, [lat], dec)}

    if warm:  # probe caches, page cache, and the latents each decoder reads
        for name in codes:
            for cmd in cmds(name).values():
                run(cmd, codes[name], envs[name])
    times: dict[str, list[float]] = {f"{n} {s}": [] for n in codes for s in SCRIPTS}
    start = os.getloadavg()
    with busy_loop(loaded):
        for _ in range(repeat):
            for script in SCRIPTS:
                for name in codes:
                    times[f"{name} {script}"].append(run(cmds(name)[script], codes[name], envs[name]))
    return {"times": times, "loadavg": [round(start[0], 2), round(os.getloadavg()[0], 2)]}


def judge(today: list[float], new: list[float]) -> tuple[float, float]:
    """``(median new / median today, noise)``; noise is half the range of the paired per-round ratios."""
    paired = [n / t for n, t in zip(new, today)]
    return statistics.median(new) / statistics.median(today), (max(paired) - min(paired)) / 2


def speed_rows(model: Path, case: str, label: str, idle: dict, loaded: dict) -> tuple[list[dict], list[str]]:
    """Rows for bench.py's table and lines for this group's own table, one per script."""
    rows, lines = [], []
    for script in SCRIPTS:
        ti, ni = idle["times"][f"today {script}"], idle["times"][f"new {script}"]
        tl, nl = loaded["times"][f"today {script}"], loaded["times"][f"new {script}"]
        ratio, noise = judge(ti, ni)
        loaded_ratio, _ = judge(tl, nl)
        today_load = statistics.median(tl) / statistics.median(ti)
        new_load = statistics.median(nl) / statistics.median(ni)
        met = "yes" if ratio <= 1.0 else ("yes (noise)" if ratio <= 1.0 + noise else "NO")
        met_load = "yes" if new_load <= 1.5 else "NO"
        rows.append(dict(model=model.stem, metric=f"layout: {script} {label}, idle, new vs today's defaults",
                         measured=f"{statistics.median(ni):.2f} s vs {statistics.median(ti):.2f} s "
                                  f"(noise ±{noise:.2f})", ratio=ratio, target=1.0, met=met.startswith("yes")))
        rows.append(dict(model=model.stem, metric=f"layout: {script} {label}, new defaults, loaded vs idle",
                         measured=f"{statistics.median(nl):.2f} s vs {statistics.median(ni):.2f} s "
                                  f"(today's: {today_load:.2f})", ratio=new_load, target=1.5))
        lines.append(f"| {model.stem} | {label} | {script} | {statistics.median(ti):.2f} | {statistics.median(ni):.2f} "
                     f"| {ratio:.2f} ±{noise:.2f} | {met} | {statistics.median(tl):.2f} | {statistics.median(nl):.2f} "
                     f"| {loaded_ratio:.2f} | {today_load:.2f} | {new_load:.2f} | {met_load} |")
    return rows, lines


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every output under ``folder`` but the JSON sidecars, by file name."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix != ".json"}


def exactness(model: Path, batch: list[Path]) -> tuple[list[dict], list[str], dict]:
    """The working tree's outputs for one file alone and in a batch of 4, --jobs 1 and 2, byte for byte."""
    env = clean_env(WORK / "cache-new")
    out = WORK / "exact" / model.stem
    four = batch[:4]
    layouts = {"alone, --jobs 1": (four[:1], "1"), "alone, --jobs 2": (four[:1], "2"),
               "batch of 4, --jobs 1": (four, "1"), "batch of 4, --jobs 2": (four, "2")}
    rows, lines, found = [], [], {}
    sources: list[Path] = four
    for script in SCRIPTS:
        seen: dict[str, dict[str, str]] = {}
        for name, (files, jobs) in layouts.items():
            dest = out / script / name.replace(", ", "_").replace(" ", "-")
            shutil.rmtree(dest, ignore_errors=True)
            inputs = sources[:len(files)]
            run(command(ROOT, script, model, inputs, dest, ("--jobs", jobs)), ROOT, env)
            seen[name] = digests(dest)
        reference = seen["batch of 4, --jobs 1"] | seen["alone, --jobs 1"]  # file 1: alone is the reference
        differs = {name: sorted(f for f, h in hashes.items() if reference.get(f, h) != h)
                   for name, hashes in seen.items()}
        bad = [name for name, files in differs.items() if files]
        rows.append(dict(model=model.stem, metric=f"layout exactness: {script}, 1 file alone and in a batch of 4, "
                                                  "--jobs 1 and 2, sha256",
                         measured="same" if not bad else "differs: " + "; ".join(
                             f"{name} ({', '.join(differs[name])})" for name in bad),
                         ratio=len(bad), target=0))
        lines.append(f"| {model.stem} | {script} | " + " | ".join("differs" if differs[n] else "same" for n in layouts)
                     + " |")
        found[script] = seen
        # Every decode layout reads the same latents: those of the batch, --jobs 1.
        sources = [out / "encode" / "batch-of-4_--jobs-1" / f"{p.stem}.npy" for p in four]
    return rows, lines, found


def layout_rows(rows: list, details: dict, repeat: int = 3, minutes: int = 20, files: int = 20,
                fullsize_minutes: int = 5, only: str | None = None, base: str = BASE_COMMIT,
                check_exactness: bool = True) -> list[str]:
    """Append this group's rows to ``rows``, every timing and digest to ``details``; return its own tables."""
    codes = {"today": extract_base(base), "new": ROOT}
    models = pick_models(os.environ.get("RAVE_TEST_MODELS"), only)
    batch_dir = WORK / f"batch{files}"
    build_audio(batch_dir, files)
    batch = sorted(batch_dir.iterdir())[:files]
    details.update(base=base, repeat=repeat, sections={}, exactness={})
    record = details
    speed = [f"today = {base}, new = working tree; seconds are medians of {repeat} interleaved runs",
             "| model | input | script | today idle | new idle | new/today idle | met (<= 1.0) | today loaded "
             "| new loaded | new/today loaded | today loaded/idle | new loaded/idle | met (<= 1.5) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    exact = ["| model | script | alone, --jobs 1 | alone, --jobs 2 | batch of 4, --jobs 1 | batch of 4, --jobs 2 |",
             "|---|---|---|---|---|---|"]
    for model in models:
        mins = fullsize_minutes if model.stem == FULLSIZE else minutes
        long = build_long(BENCH / "long", mins, 44100)
        cases = {f"long{mins}": (f"1 x {mins} min" + (" (shorter for this model)" if mins != minutes else ""),
                                 [long]),
                 f"batch{files}": (f"{files} x 1 min", batch)}
        for i, (case, (label, inputs)) in enumerate(cases.items()):
            result = {}
            for loaded in (False, True):
                state = "loaded" if loaded else "idle"
                print(f"bench layout: {model.stem}, {label}, {state}", file=sys.stderr, flush=True)
                # One warm-up per model fills both probe caches; later sections find the latents they decode.
                result[state] = section(model, case, inputs, codes, loaded, repeat, warm=i == 0 and not loaded)
                print(f"bench layout: load average {result[state]['loadavg'][0]:.2f} at start, "
                      f"{result[state]['loadavg'][1]:.2f} at end", file=sys.stderr, flush=True)
            record["sections"][f"{model.stem} {case}"] = result
            new_rows, lines = speed_rows(model, case, label, result["idle"], result["loaded"])
            rows.extend(new_rows)
            speed.extend(lines)
        if check_exactness:
            new_rows, lines, found = exactness(model, batch)
            rows.extend(new_rows)
            exact.extend(lines)
            record["exactness"][model.stem] = found
    loads = [f"{k} {s}: load average {v[s]['loadavg'][0]:.2f} -> {v[s]['loadavg'][1]:.2f}"
             for k, v in record["sections"].items() for s in v]
    return speed + [""] + loads + ([""] + exact if check_exactness else [])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--minutes", type=int, default=20, help="length of the long file (default: 20)")
    p.add_argument("--files", type=int, default=20, help="one-minute files in the batch, at least 4 (default: 20)")
    p.add_argument("--fullsize_minutes", type=int, default=5,
                   help="length of the long file for the full-size-shaped model (default: 5)")
    p.add_argument("--models", help="only the models whose names contain one of these, comma-separated")
    p.add_argument("--base", default=BASE_COMMIT, help=f"the commit that is 'today' (default: {BASE_COMMIT})")
    p.add_argument("--no_exactness", action="store_true", help="no byte-for-byte comparison across layouts")
    args = p.parse_args(argv)
    if args.files < 4:
        p.error("--files: at least 4 (the exactness check batches 4 files)")
    rows: list[dict] = []
    details: dict = {}
    tables = layout_rows(rows, details, args.repeat, args.minutes, args.files, args.fullsize_minutes, args.models,
                         args.base, not args.no_exactness)
    print("\n".join(tables))
    BENCH.mkdir(exist_ok=True)
    (BENCH / "bench.json").write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "rows": rows,
                                                  "layout": details}, indent=2))
    return 0 if all(r.get("met", r["ratio"] <= r["target"]) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
