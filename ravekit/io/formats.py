"""The ``format`` ids of the JSON files ravekit writes, in one place (docs/formats.md).

Each file says what it is with ``"format"`` and ``"format_version"``; a reader
refuses a newer version and ignores keys it does not know.  An id that an
earlier ravekit wrote under another name stays readable (``*_EARLIER``).
"""

# The sidecar of a latent file (.npy or latent WAV): NAME.json beside it.
LATENTS = "ravekit.latents"
# The record of a decoded sound file: NAME.json beside the WAV.
AUDIO_RECORD = "ravekit.audio"
# Earlier ravekit wrote the record as "ravekit.io.audio" (its module's name); such records still count.
AUDIO_RECORD_EARLIER = ("ravekit.io.audio",)
# Latent statistics written by generator.py (stats.json), read back by --stats.
STATS = "ravekit.stats"
# What one batch run of encoder.py / decoder.py did with each file (--summary FILE).
RUN_SUMMARY = "ravekit.run-summary"
# The meta of a latent map written by decoder.py --map fit (an .npz; docs/formats.md).
LATENT_MAP = "ravekit.latent_map"
