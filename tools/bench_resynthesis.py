"""Resynthesis rows of the benchmark: one-step ``decoder.py -m M -i audio/`` against its references.

One-step resynthesis encodes and decodes in one process (``ravekit/engine/transfer.py``); the
issue asks that it cost no more than the encoder's and decoder's model time, i.e. that the
chunked engine and the read-ahead are shared, not paid twice. Over the same 12 one-minute files
as the throughput rows it is measured against:
  two-step     ``encoder.py`` then ``decoder.py`` (sum of both wall times)
  generate     what RAVE's own ``rave generate`` does: one process loads the model, then for each
               file loads it whole, calls ``forward`` on it whole and writes a WAV. It reads with
               ravekit's reader so that decoding MP3/FLAC and resampling cost the same on both
               sides, and the ratio is the engine's alone.
  floor        the best floor of the throughput rows (tools/bench_throughput.py): starting
               Python with torch and the model, then the larger of the warm model's encode plus
               decode time, each in its fastest layout, and the time decoding the files takes;
               without the throughput rows, one process calling ``forward`` on the audio already
               in memory (its loading time subtracted), the former floor.
Runs are interleaved round by round and the medians compared, so load on the shared machine
hits all four alike.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from tools.bench_common import BENCH, ENV, FLOOR, PY, in_memory, wall
from tools.bench_floor import floor_facts
from tools.bench_throughput import started

GENERATE = r'''
import sys, time, warnings
from pathlib import Path
import numpy as np, soundfile as sf, torch
from ravekit.io.audio import read_audio
from ravekit.io.channels import match_channels
warnings.filterwarnings("ignore", category=DeprecationWarning)
m = torch.jit.load(sys.argv[1]).eval()
sr, channels = int(m.sr), int(getattr(m, "n_channels", 1))
out = Path(sys.argv[3])
out.mkdir(parents=True, exist_ok=True)
with torch.inference_mode():
    for path in sorted(Path(sys.argv[2]).iterdir()):
        x = match_channels(read_audio(path, sr)[0], channels)
        torch.manual_seed(0)
        y = m.forward(torch.from_numpy(x)[None])[0].numpy()
        sf.write(str(out / f"{path.stem}.wav"), y.T, sr, subtype="FLOAT")
'''


def resynthesis(model: Path, repeat: int, rows: list, details: dict | None = None) -> None:
    """Append one-step resynthesis vs two-step, vs ``rave generate``-style, vs the best floor."""
    audio, work = BENCH / "audio", BENCH / "work" / model.stem / "resynthesis"
    lat = work / "latents"
    common = ["--force", "-q"]
    one_cmd = [PY, "decoder.py", "-m", str(model), "-i", str(audio), "-o", str(work / "one-step"), *common]
    enc_cmd = [PY, "encoder.py", "-m", str(model), "-i", str(audio), "-o", str(lat), *common]
    dec_cmd = [PY, "decoder.py", "-m", str(model), "-i", str(lat), "-o", str(work / "two-step"), *common]
    gen_cmd = [PY, "-c", GENERATE, str(model), str(audio), str(work / "generate")]
    wall(enc_cmd)  # warm the page cache and write the latents dec_cmd reads
    info, context = floor_facts(model)
    a_npz = in_memory(info, audio, work)
    best = (details or {}).get(f"{model.stem} best")
    floor_of = best_floor(model, info, context, a_npz, audio, best) if best else bare_forward(model, a_npz)
    times: dict[str, list[float]] = {"one": [], "two": [], "generate": [], "floor": []}
    try:
        for _ in range(repeat):
            times["one"].append(wall(one_cmd, env=ENV)[0])
            times["two"].append(wall(enc_cmd, env=ENV)[0] + wall(dec_cmd, env=ENV)[0])
            times["generate"].append(wall(gen_cmd)[0])
            times["floor"].append(floor_of.send(None))
    finally:
        floor_of.close()
    one, two, gen, floor = (statistics.median(times[k]) for k in ("one", "two", "generate", "floor"))
    name = "resynthesis 12 x 1 min (decoder.py on audio, defaults)"
    for label, ref, target in [("encoder.py + decoder.py", two, 1.0),
                               ("rave-generate-style whole files", gen, None),
                               ("best floor" if best else "bare forward()", floor, 1.05 if best else 1.10)]:
        rows.append(dict(model=model.stem, metric=f"{name}, time vs {label}",
                         measured=f"{one:.2f} s vs {ref:.2f} s", ratio=one / ref, target=target))


def bare_forward(model: Path, a_npz: Path):
    """Seconds of one warm ``forward`` per file on the audio in memory, one value per ``send(None)``."""
    cmd = [PY, "-c", FLOOR, "forward", str(model), str(a_npz)]
    while True:
        seconds, out = wall(cmd)
        yield seconds - float(out.split()[-1])


def best_floor(model: Path, info, context: tuple[int, int], a_npz: Path, audio: Path, best: dict):
    """Start-up + max(best encode + best decode, file decoding), one value per ``send(None)``."""
    from ravekit.commands.parallel import usable_cores
    from tools.bench_floor import call_frames, model_workers, reader_workers

    pools = {method: (model_workers(method, model, a_npz, info.ratio, context, threads, processes),
                      call_frames(secs, info.sr, info.ratio))
             for method, (secs, threads, processes) in best.items()}
    readers = reader_workers(sorted(audio.iterdir()), info.sr, info.n_channels, usable_cores())
    try:
        while True:
            start = started(model, max(processes for _, _, processes in best.values()))
            compute = sum(pool.timed(str(call)) for pool, call in pools.values())
            yield start + max(compute, readers.timed())
    finally:
        for pool, _ in pools.values():
            pool.close()
        readers.close()
