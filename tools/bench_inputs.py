"""The benchmark's synthesised inputs, shared by tools/bench.py and the groups it runs.

A module of its own, importing no other bench module, so that a group can use the
builders without importing tools/bench.py (which imports the groups).
"""

from __future__ import annotations

from pathlib import Path


def build_audio(folder: Path, count: int = 12) -> None:
    """``count`` one-minute files: WAV 44.1 kHz, FLAC 48 kHz, MP3; mono and stereo, in turn."""
    import numpy as np
    import soundfile as sf

    from ravekit.demo.model import demo_signal

    folder.mkdir(parents=True, exist_ok=True)
    kinds = [("wav", 44100, "FLOAT"), ("flac", 48000, "PCM_24"), ("mp3", 44100, "MPEG_LAYER_III")]
    for i in range(count):
        ext, sr, subtype = kinds[i % 3]
        channels = 1 + (i // 3) % 2
        path = folder / f"take{i:02d}.{ext}"
        if path.exists():
            continue
        y = np.stack([demo_signal(sr, 60.0, seed=i + c) for c in range(channels)], 1)
        sf.write(str(path), y, sr, subtype=subtype)


def build_long(folder: Path, minutes: int, sr: int) -> Path:
    """One mono WAV of ``minutes`` minutes of noise at ``sr``, written a minute at a time."""
    import numpy as np
    import soundfile as sf

    path = folder / f"long{minutes}min_{sr}.wav"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        with sf.SoundFile(str(path), "w", samplerate=sr, channels=1, subtype="FLOAT") as f:
            for _ in range(minutes):
                f.write((0.1 * rng.standard_normal(60 * sr)).astype(np.float32))
    return path
