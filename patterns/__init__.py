"""Pattern modules for generator.py: one file per pattern, found by listing this folder.

Adding a ``.py`` file here (or to a folder passed with ``--patterns_dir``)
adds a ``--pattern`` choice; files starting with ``_`` are ignored.  The
files are not imported to be listed: only the chosen one is.

Contract (see ``ravekit/generate/patterns.py`` for the full text)::

    \"\"\"One-line description shown by --list_patterns.\"\"\"
    import numpy as np

    NUM_BASES = 1                    # base arrays generate() receives

    def generate(bases, num_loops, rng, stats, **options):
        # bases: list of NUM_BASES float32 arrays, each (k, latent_dims)
        # rng: numpy.random.Generator; draw EVERY random number from it
        # stats: ravekit.generate.stats.Stats (mean, std, scale, cov, corr, ...)
        # stats.discrete: the bases hold codes of a discrete model; return
        # only codes (rearrange the bases' values, or draw from
        # stats.code_probabilities()): non-codes are refused, never rounded
        # options: values of this pattern's own flags, by dest
        return np.tile(bases[0], (num_loops, 1))   # (frames, latent_dims)

    def add_arguments(parser):       # optional: own flags, --<name>_<option>
        parser.add_argument("--mine_amount", type=float, default=0.5)

    def check_options(**options):    # optional: raise ValueError("--mine_amount ...: why")
        ...                          # called before any input is read

    def output_frames(k, latent_dims, num_loops, **options):   # optional
        return k * num_loops

    def loop_boundaries(k, num_loops, **options):   # optional, for --plot
        return list(range(0, k * num_loops, k))

    def base_frames(k, num_loops, **options):   # optional: frames per base (default k)
        return k * num_loops                    # (continuation.py: one long base)

With ``generator.py --prior`` the bases are frames an MSPrior model
generated (one after the other) and ``stats`` describes those frames.
"""
