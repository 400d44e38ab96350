"""ravekit: compose inside the latent space of RAVE models.

The package holds all the work; the top-level scripts (``encoder.py``,
``decoder.py``, ...) are thin command-line shells over it.  Importing the
package itself is cheap: torch and numpy are imported only by the modules
that need them, so ``--help`` stays fast.

Names and shapes, the same in every docstring:

- audio: ``np.ndarray [shape=(channels, samples)]``, float32;
- latents: ``np.ndarray [shape=(1, latent_dims, frames)]`` as ``encode``
  returns them (files from other tools may be ``(latent_dims, frames)``);
- patterns and drawn frames: ``np.ndarray [shape=(frames, latent_dims)]``
  (what ``generate()`` in ``patterns/`` returns);
- ``latent_dims`` is the latent axis in parameters, attributes and sidecars.
  ``ModelInfo.latent_size`` / ``full_latent_size`` and ``PriorInfo.latent_size``
  keep RAVE's names for what an export says about itself (the dims ``encode``
  returns, the size of its internal latent space); ``ModelInfo.decode_dims``
  is the most ``decode`` accepts (``full_latent_size``, but a spherical
  model's ``latent_size``); ``--dims`` and a record's ``bending.dims`` pick
  dims, counted from 1.
- units: ``sr`` in Hz, ``ratio`` in samples per latent frame, lengths in
  samples, latent frames or seconds as each name says.
"""

__version__ = "0.1.0"
