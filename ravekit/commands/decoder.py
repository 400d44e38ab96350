#!/usr/bin/env python3
"""Decode RAVE latents (.npy or latent WAV) into audio through a model, or run audio through
models in one step: resynthesis (encode and decode with --model) or timbre transfer (encode with
--encoder A.ts, decode with --model B.ts), with latent bending (--dims, --scale, --bias) on the way.

Each input becomes OUTPUT/<mirrored path>.wav at the model's sample rate,
32-bit float by default (RF64 beyond 4 GiB), with a JSON record (.json) of how
it was made: a re-run keeps outputs made the same way and reports those made
otherwise. When the latents' sidecar knows the source's length, the audio is
cut to it. Output paths go to stdout, messages to stderr.

examples:
  python decoder.py --model model.ts --input latents/ --output decoded
  python decoder.py --model B.ts --encoder A.ts --input recordings/ --output transferred
"""

from __future__ import annotations

import sys

from ravekit.choices import (
    AUDIO_EXTENSIONS,
    CHANNEL_MODES,
    DECODER_SUBTYPES,
    LATENT_EXTENSIONS,
    WAV_AS,
    extensions_text,
)
from ravekit.commands import console, parallel
from ravekit.commands import flags as cli
from ravekit.commands.batch import check_link, find_jobs, run_jobs, summarise
from ravekit.commands.mapping import add_map_args, check_map_args, prepare_map
from ravekit.commands.progress import audio_seconds, latent_seconds
from ravekit.commands.summary import summary_target
from ravekit.engine.bending import Bending, dim_list, value_list
from ravekit.errors import RavekitError

# start-up: torch, numpy and the engine load inside the functions that decode, so --help is fast.

PROG = cli.prog_name("decoder.py")  # or ravekit-decoder, as the user ran it


def get_parser():
    parser = cli.make_parser(PROG, __doc__)
    # A .wav is audio or latents by what it is (see --wav_as), so it is listed once.
    extensions = LATENT_EXTENSIONS + tuple(e for e in AUDIO_EXTENSIONS if e not in LATENT_EXTENSIONS)
    cli.add_model_batch_args(parser, "latents to decode (.npy, or latent WAV written by generator.py), or audio "
                             "to run through the models", "./_decoder-output", extensions_text(extensions))
    add_transfer_args(parser)
    add_map_args(parser)
    parser.add_argument("--subtype", default="FLOAT", choices=DECODER_SUBTYPES,
                        help="sample format of the WAVs written")
    parser.add_argument("--no_trim", action="store_true",
                        help="keep the padding of the last frame instead of cutting to the source's length")
    cli.add_live_args(parser, "decode (audio inputs: encode, then decode)")
    return parser


def add_transfer_args(parser) -> None:
    """The flags of one-step resynthesis and transfer, and of latent bending."""

    parser.add_argument("--encoder", default=None, metavar="MODEL.ts",
                        help="model that encodes audio inputs (default: --model itself, i.e. resynthesis)")
    parser.add_argument("--wav_as", default="auto", choices=WAV_AS,
                        help="how .wav inputs are read: auto goes by the header (4 kHz or more is audio; below, "
                        "latents when a latents sidecar, more than two channels or latent_size channels say so)")
    parser.add_argument("--dims", type=dim_list, default=None, metavar="LIST",
                        help="latent dims the decoder gets, counted from 1, in this order (2,1,3 swaps the first "
                        "two; the decoder's dims beyond the list are filled with noise from --seed, as for "
                        "latents with fewer dims); each a whole number from 1, repeats allowed, at most as many as "
                        "the model decodes; needed between models of different latent size or ratio")
    parser.add_argument("--scale", type=value_list, default=None, metavar="VALUES",
                        help="multiply the decoded dims (after --dims) by one value, or one per dim (1,1,0.5)")
    parser.add_argument("--bias", type=value_list, default=None, metavar="VALUES",
                        help="then add one value, or one per dim")
    parser.add_argument("--channel_mode", default="auto", choices=[m for m in CHANNEL_MODES if m != "split"],
                        help="how an audio input's channels feed the encoder (see encoder.py)")
    parser.add_argument("--channels", type=cli.channel_list, default=None, metavar="LIST",
                        help="audio inputs: use only these file channels, counted from 1 (see encoder.py)")


def main(argv=None) -> int:
    return parallel.batch_main(PROG, get_parser(), argv, "ravekit.commands.decoder", run)


def run(args, workers: int = 1) -> int:
    """Decode the inputs with ``workers`` processes sharing each file's model calls (``engine.pool``)."""
    from pathlib import Path

    from ravekit.engine.layout import use_threads
    from ravekit.engine.pool import ChunkPool

    if args.encoder:
        cli.check_input_file("--encoder", args.encoder)
    check_map_args(args)
    jobs = find_jobs(args.input, args.extensions, Path(args.output), ".wav", args.shard, args.part,
                     args.null, records=True, summary=args.summary)
    bending = Bending.from_lists(args.dims, args.scale, args.bias)
    use_threads(args.threads)
    if args.live is not None:
        workers = 1  # nn~'s calls run in order in this process: helpers would have nothing to do
    # Started first, the helpers load the models while this process does.
    pool = ChunkPool(workers, args.threads, preload=[m for m in (args.model, args.encoder) if m]
                     if args.device in ("cpu", "auto") else [])
    with pool:  # the helpers stop however the run ends
        return _decode_jobs(args, jobs, bending, pool)


def _decode_jobs(args, jobs, bending, pool) -> int:
    """Decode ``jobs`` with the models' calls shared by ``pool`` (``run`` made both)."""
    from ravekit.engine.model import load_model
    from ravekit.engine.transfer import Transfer
    from ravekit.io.kind import AUDIO

    decoder = Transfer(load_model(args.model, args.device), args.seed, args.subtype, args.chunk, not args.no_trim,
                       warn=lambda message: console.warn(PROG, message), bending=bending, wav_as=args.wav_as,
                       live=cli.live_setting(args))

    def kind(job):
        try:
            return decoder.kind(job.source)
        except RavekitError:
            return None  # reported with the file, when run_jobs reaches it

    pool.serve(decoder.model)
    encoder_model = None
    if args.map:
        encoder_model = load_encoder(args, decoder, pool)
        _, notes, warnings = prepare_map(PROG, args, decoder, encoder_model)
        _say(args, notes, warnings)
    audio = {id(job) for job in jobs if kind(job) == AUDIO}
    if audio:
        start_encoder(args, decoder, pool, encoder_model)

    def to_do(job) -> bool:
        try:
            check_link(job.source)
            console.check_printable(job.output, args.null)
            return args.force or not decoder.finished(job.source, job.output)
        except RavekitError:
            return False  # run_jobs meets the problem again and reports it with the file

    # Decode and resample upcoming audio on a thread while the models work (as encoder.py does).
    from ravekit.io.prefetch import AudioPrefetcher

    todo = [job for job in jobs if id(job) in audio and to_do(job)]
    order = {id(job): i for i, job in enumerate(todo)}
    encoder = decoder.encoder
    prefetcher = AudioPrefetcher([job.source for job in todo], encoder.model.info.sr,
                                 max_blocks=encoder.prefetch_blocks()) if todo and encoder is not None else None

    def work(job, progress):
        reading = prefetcher.open(order[id(job)]) if id(job) in order else None
        path, warnings = decoder.decode_file(job.source, job.output, progress, reading)
        for message in warnings:
            console.warn(PROG, message)
        return [path]


    m = decoder.model.info

    def estimate(job):
        """Seconds of audio through the models: decoded, plus encoded for audio inputs."""
        if id(job) not in audio:
            return latent_seconds(job.source, m.sr, m.ratio)
        found = audio_seconds(job.source)
        e = decoder.encoder.model.info
        return None if found is None else found[0] * (1 + (m.ratio / m.sr) / (e.ratio / e.sr))

    try:
        report = run_jobs(PROG, jobs, work,
                          lambda job: [job.output] if decoder.finished(job.source, job.output) else [],
                          args.force, args.quiet, estimate, args.null)
    finally:
        if prefetcher is not None:
            prefetcher.close()
    return summarise(PROG, report, args.quiet, summary_target(PROG, args))


def load_encoder(args, decoder, pool):
    """The model that encodes audio: --encoder, or --model itself."""
    import os

    from ravekit.engine.model import load_model

    same = not args.encoder or os.path.realpath(args.encoder) == os.path.realpath(args.model)
    model = decoder.model if same else load_model(args.encoder, args.device)
    pool.serve(model)  # the helpers load the encoder too, by its path
    return model


def start_encoder(args, decoder, pool, model=None) -> None:
    """Give the decoder its encoder (--encoder, or --model itself) and say once what the pair does."""
    from ravekit.engine.encode import Encoder
    from ravekit.engine.latent_map import FULL, MeanEncoding

    model = model or load_encoder(args, decoder, pool)
    if decoder.latent_map is not None and decoder.latent_map.audio.space_in == FULL:
        model = MeanEncoding(model)  # the map was fitted on posterior means: audio is encoded the same way
    notes, warnings = decoder.use_encoder(Encoder(model, args.seed, args.channel_mode, args.chunk, args.channels,
                                                  decoder.live))
    _say(args, notes, warnings)


def _say(args, notes, warnings) -> None:
    for note in [] if args.quiet else notes:
        console.info(PROG, note)
    for message in warnings:
        console.warn(PROG, message)


if __name__ == "__main__":
    sys.exit(main())
