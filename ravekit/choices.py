"""Every fixed list of choices, in one place: the commands' parsers and the library both read them here.

Standard library only (nothing at all is imported), so a command's ``--help`` stays light.
"""

# Audio files an --input folder yields to the encoder (its --extensions default).  libsndfile reads
# SOUNDFILE_EXTENSIONS itself; the others go through ffmpeg when it is installed.
AUDIO_EXTENSIONS = (".wav", ".aif", ".aiff", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac")
SOUNDFILE_EXTENSIONS = (".wav", ".aif", ".aiff", ".flac", ".ogg", ".opus", ".mp3")
# Latent arrays: .npy, or latent WAVs (one channel per latent dim) for Pure Data.
LATENT_EXTENSIONS = (".npy", ".wav")
MODEL_EXTENSIONS = (".ts",)

# How a file's channels feed the model (encoder --channel_mode; see ravekit.io.channels).
CHANNEL_MODES = ("auto", "mix", "fold", "left", "right", "split")

# Where a model runs: auto tries cuda, then mps, then cpu.
DEVICES = ("auto", "cpu", "cuda", "mps")

# What a .wav input holds (decoder --wav_as; see ravekit.io.kind): auto reads it from the file.
WAV_AS = ("auto", "audio", "latents")

# Sample formats the WAV writer takes, and those decoder --subtype offers (DOUBLE is for latent WAVs).
WAV_SUBTYPES = ("FLOAT", "PCM_16", "PCM_24", "DOUBLE")
DECODER_SUBTYPES = ("FLOAT", "PCM_16", "PCM_24")

# How generator draws base frames (--distribution), and those that apply to a discrete model's codes.
DISTRIBUTIONS = ("normal", "uniform", "iqr-uniform", "correlation-based", "histogram")
DISCRETE_DISTRIBUTIONS = ("histogram", "uniform")

# averager --method and --scope.
MERGE_METHODS = ("linear", "slerp")
MERGE_SCOPES = ("all", "encoder", "decoder")


def extensions_text(extensions: tuple[str, ...]) -> str:
    """A list of file endings as an --extensions value: ``".npy,.wav"``."""
    return ",".join(extensions)

# Seconds of audio per model call (--chunk). The fastest call length, or within noise of it, for
# encoding and decoding every shipped export in make bench's search (tools/bench_floor.py), and the
# fastest for a full-size v2 export in the performance issue's measurements. The demo model decodes
# fastest with 5 s calls (docs/performance.md).
DEFAULT_CHUNK_SECONDS = 15.0
