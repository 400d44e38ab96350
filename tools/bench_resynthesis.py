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
  floor        one process with a warm model calling ``forward`` on the audio already in memory
               (its loading time subtracted), as the throughput rows' floors do.
Runs are interleaved round by round and the medians compared, so load on the shared machine
hits all four alike.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from tools.bench import BENCH, FLOOR, PY, in_memory, wall

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


def resynthesis(model: Path, repeat: int, rows: list) -> None:
    """Append one-step resynthesis vs two-step, vs ``rave generate``-style, vs bare ``forward()``."""
    audio, work = BENCH / "audio", BENCH / "work" / model.stem / "resynthesis"
    lat = work / "latents"
    common = ["--force", "-q"]
    one_cmd = [PY, "decoder.py", "-m", str(model), "-i", str(audio), "-o", str(work / "one-step"), *common]
    enc_cmd = [PY, "encoder.py", "-m", str(model), "-i", str(audio), "-o", str(lat), *common]
    dec_cmd = [PY, "decoder.py", "-m", str(model), "-i", str(lat), "-o", str(work / "two-step"), *common]
    gen_cmd = [PY, "-c", GENERATE, str(model), str(audio), str(work / "generate")]
    wall(enc_cmd)  # warm the page cache and write the latents in_memory() reads
    a_npz, _ = in_memory(model, audio, lat, work)
    floor_cmd = [PY, "-c", FLOOR, "forward", str(model), str(a_npz)]
    times: dict[str, list[float]] = {"one": [], "two": [], "generate": [], "floor": []}
    for _ in range(repeat):
        times["one"].append(wall(one_cmd)[0])
        times["two"].append(wall(enc_cmd)[0] + wall(dec_cmd)[0])
        times["generate"].append(wall(gen_cmd)[0])
        seconds, out = wall(floor_cmd)
        times["floor"].append(seconds - float(out.split()[-1]))
    one, two, gen, floor = (statistics.median(times[k]) for k in ("one", "two", "generate", "floor"))
    name = "resynthesis 12 x 1 min (decoder.py on audio)"
    for label, ref, target in [("encoder.py + decoder.py", two, 1.0),
                               ("rave-generate-style whole files", gen, None),
                               ("bare forward()", floor, 1.10)]:
        rows.append(dict(model=model.stem, metric=f"{name}, time vs {label}",
                         measured=f"{one:.2f} s vs {ref:.2f} s", ratio=one / ref, target=target))
