"""The five commands (encoder, decoder, generator, inspector, averager) and their shared plumbing.

Each command module has ``get_parser()`` and ``main(argv=None) -> int``; only the standard library is
imported at the top, so ``--help`` loads neither torch nor numpy.
"""
