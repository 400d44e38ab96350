"""ravekit: compose inside the latent space of RAVE models.

The package holds all the work; the top-level scripts (``encoder.py``,
``decoder.py``, ...) are thin command-line shells over it.  Importing the
package itself is cheap: torch and numpy are imported only by the modules
that need them, so ``--help`` stays fast.
"""

__version__ = "0.1.0"
